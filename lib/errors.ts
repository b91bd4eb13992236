// Typed errors with stable codes. Every error quantmoe throws (from TypeScript or from the native
// addon) is a QuantMoeError whose `code` callers can switch on; the message names the file,
// tensor or argument and, where one exists, the fix.

export type ErrorCode =
  | 'E_FORMAT' // corrupt or truncated file
  | 'E_UNSUPPORTED' // architecture, tensor type, option not supported
  | 'E_SHAPE'
  | 'E_DTYPE'
  | 'E_ARGUMENT' // wrong JS type or out-of-range value for an argument
  | 'E_TOKEN_RANGE'
  | 'E_CONTEXT_OVERFLOW'
  | 'E_ABORTED'
  | 'E_DISPOSED'
  | 'E_BACKEND_UNAVAILABLE'
  | 'E_OUT_OF_MEMORY'
  | 'E_NOT_IMPLEMENTED'
  | 'E_IO'
  | 'E_LOAD' // the native addon could not be loaded
  | 'E_INTERNAL'; // a bug in quantmoe: please report it

export const ERROR_CODES: readonly ErrorCode[] = [
  'E_FORMAT', 'E_UNSUPPORTED', 'E_SHAPE', 'E_DTYPE', 'E_ARGUMENT', 'E_TOKEN_RANGE',
  'E_CONTEXT_OVERFLOW', 'E_ABORTED', 'E_DISPOSED', 'E_BACKEND_UNAVAILABLE', 'E_OUT_OF_MEMORY',
  'E_NOT_IMPLEMENTED', 'E_IO', 'E_LOAD', 'E_INTERNAL',
];

export class QuantMoeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuantMoeError';
    this.code = code;
  }
}

export function isQuantMoeError(e: unknown, code?: ErrorCode): e is QuantMoeError {
  return e instanceof QuantMoeError && (code === undefined || e.code === code);
}

export function abortError(what: string): QuantMoeError {
  return new QuantMoeError('E_ABORTED', `${what} was aborted`);
}
