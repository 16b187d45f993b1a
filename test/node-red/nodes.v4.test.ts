import { nodeRedSuite } from '../helpers/node-red-suite';

nodeRedSuite(require('node-red/package.json').version, require.resolve('node-red'));
