/*
 * Session layer (docs/protocol.md section 2): a 3-byte header on every frame payload, a session
 * id built from two 8-bit nonces, and the acceptance rules of section 2.3.
 *
 * The device normally only answers handshakes, but the initiator half (rpc_session_initiate() and
 * StartSessionReply handling) is implemented too, so that the acceptance table is complete and can
 * be tested from both ends.
 */
#ifndef RPC_SERVER_SESSION_H_
#define RPC_SERVER_SESSION_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rpc_session_type {
	RPC_SESSION_START_INIT = 0x00,
	RPC_SESSION_START_REPLY = 0x01,
	RPC_SESSION_TERMINATE = 0x02,
	RPC_SESSION_LOG = 0x03,
	RPC_SESSION_NORMAL = 0x10,
};

#define RPC_SESSION_VERSION 0x01u

enum rpc_session_state {
	RPC_SESSION_NO_SESSION = 0,
	RPC_SESSION_INIT_SENT,
	RPC_SESSION_ESTABLISHED,
};

/*
 * What the session needs from the layer below and hands to the layers above. send() must emit
 * one frame whose payload is the 3-byte header for (@p id, @p type) followed by @p body; the
 * header is passed separately so that the body can be sent from where it lies.
 */
struct rpc_session_ops {
	int (*send)(void *ctx, uint16_t id, uint8_t type, const uint8_t *body, size_t len);
	/* The body of an accepted Normal message: one RPC packet. */
	void (*normal)(void *ctx, const uint8_t *body, size_t len);
	/* The text of an accepted Log message (may be empty). Optional. */
	void (*log)(void *ctx, const uint8_t *text, size_t len);
	/* Called after every state change, with the new id (0 when not established). Optional. */
	void (*state_changed)(void *ctx, enum rpc_session_state state, uint16_t id);
};

struct rpc_session {
	const struct rpc_session_ops *ops;
	void *ctx;
	enum rpc_session_state state;
	/* Current session id; 0 unless established. */
	uint16_t id;
	/* Last nonce taken from the sequence (initially the seed). */
	uint8_t nonce;
	/* Our nonce in InitSent (initiator role). */
	uint8_t init_nonce;
};

/*
 * Set up a session in NoSession. @p nonce_seed starts the nonce sequence of section 2.2; take it
 * from a per-boot random value so that session ids differ across boots.
 */
void rpc_session_init(struct rpc_session *session, const struct rpc_session_ops *ops, void *ctx,
		      uint8_t nonce_seed);

/* Next nonce of the sequence: n = (5n + 1) mod 256, stepping again past 0. Pure. */
uint8_t rpc_session_next_nonce(uint8_t nonce);

/*
 * Device boot: sends TerminateSession with id 0 (the wake-up packet, which tells a host that had
 * a session that it is gone) and goes to NoSession.
 */
int rpc_session_start(struct rpc_session *session);

/* Initiator role: pick a nonce, send StartSessionInit, go to InitSent. */
int rpc_session_initiate(struct rpc_session *session);

/* Send TerminateSession with the current id and go to NoSession. */
int rpc_session_terminate(struct rpc_session *session);

/* Handle one received frame payload; anything not accepted by section 2.3 is ignored. */
void rpc_session_receive(struct rpc_session *session, const uint8_t *payload, size_t len);

/* Send a Log message; logs always go out with id 0 (section 2.4). */
int rpc_session_send_log(struct rpc_session *session, const uint8_t *text, size_t len);

/* Send a Normal message with the current id. RPC_ERR_INVAL unless established. */
int rpc_session_send_normal(struct rpc_session *session, const uint8_t *body, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* RPC_SERVER_SESSION_H_ */
