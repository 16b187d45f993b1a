// The credential test every node using the Cadenza credential names in `testedBy`: there is no HTTP
// endpoint to probe, so the test opens the store the credential points at.
import type { ICredentialTestFunctions, ICredentialsDecrypted, INodeCredentialTestResult } from 'n8n-workflow';
import { testCredential, type CadenzaCredentials } from './host';

export async function cadenzaStoreTest(this: ICredentialTestFunctions, credential: ICredentialsDecrypted): Promise<INodeCredentialTestResult> {
  try {
    const where = await testCredential((credential.data ?? {}) as CadenzaCredentials);
    return { status: 'OK', message: `Store ${where} is ready` };
  } catch (e) {
    // A bad setting (contact limits, users, retry) is named as such: the store was never opened.
    const setting = (e as { code?: string }).code === 'invalid_options';
    return { status: 'Error', message: `${setting ? 'Invalid Cadenza setting' : 'Cannot open the Cadenza store'}: ${(e as Error).message}` };
  }
}

/** The credential entry and the method map, for a node's description and `methods`. */
export const cadenzaCredential = { name: 'cadenzaApi', required: true, testedBy: 'cadenzaStoreTest' };
export const credentialTest = { cadenzaStoreTest };
