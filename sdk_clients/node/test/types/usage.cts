// The CommonJS view of the same types.
import sdk = require('@flagsvc/node');

const client = sdk.createClient({ bootstrap: './snapshot.json', stream: false });
const value: boolean = client.isEnabled('x');
void value;
