/*
 * Compile-time configuration and common error codes of the portable RPC server.
 *
 * Every buffer in the server is sized here, at compile time, so that a firmware image knows its
 * RAM use at link time and nothing is ever allocated at run time.
 */
#ifndef RPC_SERVER_CONFIG_H_
#define RPC_SERVER_CONFIG_H_

/*
 * Largest frame payload (session header + RPC packet) the server receives or sends, in bytes.
 * docs/protocol.md section 1.3: the device's maximum payload. Override with -D.
 */
#ifndef RPC_SERVER_MAX_PACKET
#define RPC_SERVER_MAX_PACKET 2048
#endif

/* Session header (u16 id + u8 type) and the rest of the fixed overhead of one rpc.echo reply. */
#define RPC_SESSION_HEADER_LEN 3
#define RPC_PACKET_HEADER_LEN 12

/*
 * Largest rpc.echo argument (docs/protocol.md section 3.4). The request is the larger of the two
 * messages: session header 3, RPC header 12, function handle 8, argument count 4, one type code 4
 * and the bytes length 8.
 */
#define RPC_SERVER_MAX_PAYLOAD (RPC_SERVER_MAX_PACKET - 39)

#if RPC_SERVER_MAX_PACKET < 64
#error "RPC_SERVER_MAX_PACKET must be at least 64: exceptions and rpc.info need room"
#endif

/*
 * Error codes returned by the library. Negative, so that "0 or negative" is the only check a
 * caller needs; the values are the library's own, not errno, because there is no errno here.
 */
#define RPC_OK 0
#define RPC_ERR_INVAL (-1)  /* an argument or the call order is wrong */
#define RPC_ERR_NOSPC (-2)  /* the data does not fit the buffer */
#define RPC_ERR_IO (-3)     /* the write callback failed */
#define RPC_ERR_TYPE (-4)   /* an RPC argument is missing or of another type */

#endif /* RPC_SERVER_CONFIG_H_ */
