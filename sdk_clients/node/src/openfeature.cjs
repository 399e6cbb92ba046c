'use strict';
// An OpenFeature provider for @openfeature/server-sdk (a peer dependency, not a dependency of
// the core SDK): local evaluation through a flagsvc client, reasons and error codes mapped,
// PROVIDER_CONFIGURATION_CHANGED with the changed flag keys.

const { OpenFeatureEventEmitter, ProviderEvents, ErrorCode: OFErrorCode } = require('@openfeature/server-sdk');
const { createClient, FlagsvcClient } = require('./client.cjs');
const { Reason } = require('./engine.cjs');

// flagsvc's one non-standard reason maps as the server's OFREP answers map it.
const PREREQUISITE_METADATA = Object.freeze({ flagsvcReason: Reason.PREREQUISITE_FAILED });
const ERROR_CODES = {
  FLAG_NOT_FOUND: OFErrorCode.FLAG_NOT_FOUND,
  TYPE_MISMATCH: OFErrorCode.TYPE_MISMATCH,
  PROVIDER_NOT_READY: OFErrorCode.PROVIDER_NOT_READY,
  PARSE_ERROR: OFErrorCode.PARSE_ERROR,
  TARGETING_KEY_MISSING: OFErrorCode.TARGETING_KEY_MISSING,
  INVALID_CONTEXT: OFErrorCode.INVALID_CONTEXT,
  GENERAL: OFErrorCode.GENERAL,
};

class FlagsvcProvider {
  /**
   * @param clientOrOptions a flagsvc client (left open on close) or createClient options
   *                        (the provider owns that client and closes it)
   * @param options {readyTimeoutMs}: how long initialize() waits for flagsvc (default 5000)
   */
  constructor(clientOrOptions, options = {}) {
    this.metadata = Object.freeze({ name: 'flagsvc' });
    this.runsOn = 'server';
    this.hooks = [];
    this.events = new OpenFeatureEventEmitter();
    this._owned = !(clientOrOptions instanceof FlagsvcClient);
    this.client = this._owned ? createClient(clientOrOptions) : clientOrOptions;
    this._readyTimeoutMs = (options && options.readyTimeoutMs) || 5000;
    this._onChange = (keys) => this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: keys });
    this._onReady = () =>
      this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: this.client.keys() });
    this._onError = (error) => this.events.emit(ProviderEvents.Error, { message: error.message });
    this.client.on('change', this._onChange);
    this.client.on('error', this._onError);
    this.client.on('ready', this._onReady);
  }

  /**
   * Waits (bounded) for a snapshot from flagsvc. Resolves either way: without flagsvc the
   * provider serves the bootstrap, else each call's default with PROVIDER_NOT_READY.
   */
  async initialize() {
    await this.client.waitForReady(this._readyTimeoutMs);
  }

  async onClose() {
    this.client.off('change', this._onChange);
    this.client.off('error', this._onError);
    this.client.off('ready', this._onReady);
    if (this._owned) await this.client.close();
  }

  resolveBooleanEvaluation(flagKey, defaultValue, context) {
    return Promise.resolve(this._resolve(flagKey, defaultValue, context));
  }

  resolveStringEvaluation(flagKey, defaultValue, context) {
    return Promise.resolve(this._resolve(flagKey, defaultValue, context));
  }

  resolveNumberEvaluation(flagKey, defaultValue, context) {
    return Promise.resolve(this._resolve(flagKey, defaultValue, context));
  }

  resolveObjectEvaluation(flagKey, defaultValue, context) {
    return Promise.resolve(this._resolve(flagKey, defaultValue, context));
  }

  /** The resolution details for one flag (synchronous; also usable without OpenFeature). */
  _resolve(flagKey, defaultValue, context) {
    // The default's type is the expected type; an object default accepts a json flag.
    const r = this.client.evaluate(flagKey, context, defaultValue === undefined ? null : defaultValue);
    if (r.errorCode !== null) {
      return {
        value: defaultValue,
        reason: 'ERROR',
        errorCode: ERROR_CODES[r.errorCode] || OFErrorCode.GENERAL,
        errorMessage: r.errorMessage || undefined,
      };
    }
    if (r.reason === Reason.PREREQUISITE_FAILED) {
      return { value: r.value, variant: r.variant, reason: 'TARGETING_MATCH', flagMetadata: PREREQUISITE_METADATA };
    }
    return { value: r.value, variant: r.variant, reason: r.reason };
  }
}

module.exports = { FlagsvcProvider };
