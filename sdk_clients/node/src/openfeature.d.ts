// Types of the flagsvc OpenFeature provider (for @openfeature/server-sdk).
import type { EvaluationContext, JsonValue, OpenFeatureEventEmitter, Provider, ResolutionDetails } from '@openfeature/server-sdk';
import type { ClientOptions, FlagsvcClient } from './index';

export interface FlagsvcProviderOptions {
  /** How long initialize() waits for flagsvc (default 5000 ms); it resolves either way. */
  readyTimeoutMs?: number;
}

export declare class FlagsvcProvider implements Provider {
  constructor(clientOrOptions: FlagsvcClient | ClientOptions, options?: FlagsvcProviderOptions);
  readonly metadata: { readonly name: 'flagsvc' };
  readonly runsOn: 'server';
  readonly hooks: [];
  readonly events: OpenFeatureEventEmitter;
  /** The flagsvc client the provider evaluates with. */
  readonly client: FlagsvcClient;
  initialize(): Promise<void>;
  onClose(): Promise<void>;
  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>>;
  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext): Promise<ResolutionDetails<string>>;
  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext): Promise<ResolutionDetails<number>>;
  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T, context: EvaluationContext): Promise<ResolutionDetails<T>>;
}

declare const provider: { FlagsvcProvider: typeof FlagsvcProvider };
export default provider;
