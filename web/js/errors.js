// errors.js — the gateway's error codes (docs/api.md, "Error codes"), in one place: HTTP
// bodies `{"error": {"code"}}` and WebSocket `error` frames use the same ones. Also the
// WebSocket close codes (docs/protocol.md).

/** The `code` of an error, over HTTP and on the WebSocket. */
export const ErrorCode = Object.freeze({
  INVALID_ARGUMENT: 'invalid_argument',
  INVALID_JSON: 'invalid_json',
  INVALID_FRAME: 'invalid_frame',
  UNAUTHENTICATED: 'unauthenticated',
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not_found',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  REQUEST_TIMEOUT: 'request_timeout',
  CONFLICT: 'conflict',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type',
  RATE_LIMITED: 'rate_limited',
  TOO_MANY_CONNECTIONS: 'too_many_connections',
  INTERNAL: 'internal',
  UNAVAILABLE: 'unavailable',
});

/** How the gateway closes a WebSocket (the numbers the client acts on). */
export const CloseCode = Object.freeze({
  TRY_AGAIN_LATER: 1013,
  NO_HEARTBEAT: 4000,
  UNAUTHENTICATED: 4001,
});
