/*
 * Framing layer (docs/protocol.md section 1): escaped, CRC-checked packets on a byte stream.
 *
 *     [FE]  FF FD  esc(len: u32 LE)  esc(payload)  esc(crc: u16 LE)
 *
 * The framer streams a packet out through a write callback, chunk by chunk, so that a reply can be
 * sent from where it lies (session header from the stack, RPC packet from the tx buffer) without
 * first being copied into one contiguous frame. The unframer is a byte state machine: it can be fed
 * from a UART ISR ring buffer in whatever chunks arrive, and its result never depends on the
 * chunking.
 */
#ifndef RPC_SERVER_FRAMING_H_
#define RPC_SERVER_FRAMING_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RPC_FRAME_ESCAPE 0xFFu
#define RPC_FRAME_NOP 0xFEu
#define RPC_FRAME_START 0xFDu

/*
 * Sends @p len wire bytes. Returns 0 when all bytes were accepted, a negative error otherwise.
 * The framer never retries: a transport that can accept fewer bytes must loop itself.
 */
typedef int (*rpc_write_fn)(void *ctx, const uint8_t *data, size_t len);

/* Framer state. Fields are private; use the functions below. */
struct rpc_framer {
	rpc_write_fn write;
	void *write_ctx;
	/* Send the bare FE before the next packet (true after init and after reset). */
	bool need_nop;
	/* A packet has been started and not yet finished. */
	bool in_packet;
	/* Payload bytes still expected by rpc_framer_write_chunk(). */
	uint32_t remaining;
	/* CRC over the wire bytes sent so far for the current packet. */
	uint16_t crc;
};

/* Set up a framer; the first packet is preceded by FE. */
void rpc_framer_init(struct rpc_framer *framer, rpc_write_fn write, void *write_ctx);

/*
 * Forget any packet in progress; the next packet is preceded by FE again, so that a stray FF left
 * on the line (for instance by an interrupted packet) turns into a harmless no-op.
 */
void rpc_framer_reset(struct rpc_framer *framer);

/*
 * Begin a packet of exactly @p payload_len payload bytes: sends [FE] FF FD and the escaped length.
 * Returns RPC_ERR_INVAL if a packet is already open or the length does not fit in a u32, or the
 * write callback's error.
 */
int rpc_framer_start(struct rpc_framer *framer, size_t payload_len);

/*
 * Send the next @p len payload bytes, escaped. Returns RPC_ERR_INVAL if no packet is open or the
 * chunk would exceed the length given to rpc_framer_start(), or the write callback's error.
 */
int rpc_framer_write_chunk(struct rpc_framer *framer, const uint8_t *data, size_t len);

/*
 * Close the packet: sends the escaped CRC. Returns RPC_ERR_INVAL if no packet is open or fewer
 * payload bytes were written than announced, or the write callback's error.
 */
int rpc_framer_finish(struct rpc_framer *framer);

/* start + write_chunk + finish for a payload that is already contiguous. */
int rpc_framer_write_packet(struct rpc_framer *framer, const uint8_t *payload, size_t len);

/* Dropped packets by reason (docs/protocol.md section 1.3), plus the delivered ones. */
struct rpc_unframer_stats {
	uint32_t delivered;
	uint32_t bad_crc;
	uint32_t too_long;
	uint32_t invalid_escape;
	uint32_t interrupted;
};

/*
 * Receives one complete, CRC-valid payload. @p payload points into the unframer's buffer and is
 * valid only until the callback returns and the unframer is fed again.
 */
typedef void (*rpc_deliver_fn)(void *ctx, const uint8_t *payload, size_t len);

enum rpc_unframer_state {
	RPC_UNFRAMER_HUNTING = 0,
	RPC_UNFRAMER_LENGTH,
	RPC_UNFRAMER_PAYLOAD,
	RPC_UNFRAMER_CRC,
};

/* Unframer state. Fields are private except stats, which callers may read and clear. */
struct rpc_unframer {
	uint8_t *buf;
	size_t capacity;
	rpc_deliver_fn deliver;
	void *deliver_ctx;
	enum rpc_unframer_state state;
	/* The previous byte was an FF not yet paired with the next one. */
	bool escape_pending;
	/* Bytes of the current field (length or CRC) received so far. */
	uint8_t field_pos;
	uint32_t length;
	size_t received;
	uint16_t crc;
	uint16_t crc_received;
	struct rpc_unframer_stats stats;
};

/*
 * Set up an unframer storing into @p buf, whose @p capacity is the maximum payload: a packet that
 * declares a longer payload is dropped as too_long before a byte of it is stored.
 */
void rpc_unframer_init(struct rpc_unframer *unframer, uint8_t *buf, size_t capacity,
		       rpc_deliver_fn deliver, void *deliver_ctx);

/* Drop any partial packet (not counted) and go back to hunting; stats are kept. */
void rpc_unframer_reset(struct rpc_unframer *unframer);

/*
 * Feed received bytes, in any chunking. Each complete valid payload is delivered through the
 * callback before rpc_unframer_feed() returns, in stream order.
 */
void rpc_unframer_feed(struct rpc_unframer *unframer, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* RPC_SERVER_FRAMING_H_ */
