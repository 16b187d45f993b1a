import { nodeRedSuite } from '../helpers/node-red-suite';

nodeRedSuite(require('node-red-5/package.json').version, require.resolve('node-red-5'));
