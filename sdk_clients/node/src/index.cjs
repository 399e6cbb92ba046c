'use strict';
// flagsvc Node SDK: local evaluation of flagsvc flags (CommonJS entry; index.mjs is the ESM one).

const { createClient, FlagsvcClient } = require('./client.cjs');
const { Engine, SnapshotError, Reason, ErrorCode } = require('./engine.cjs');
const { linearRegExp } = require('./regex.cjs');

module.exports = { createClient, FlagsvcClient, Engine, SnapshotError, Reason, ErrorCode, linearRegExp };
