// flagsvc Node SDK, ESM entry: the same module instance as the CommonJS entry.
import sdk from './index.cjs';

export const { createClient, FlagsvcClient, Engine, SnapshotError, Reason, ErrorCode, linearRegExp } = sdk;
export default sdk;
