/*
 * CRC-16/CCITT-FALSE, the checksum of the framing layer (docs/protocol.md section 1.2).
 */
#ifndef RPC_SERVER_CRC16_H_
#define RPC_SERVER_CRC16_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Initial value of the CRC; the caller passes it for the first chunk. */
#define RPC_CRC16_INIT 0xFFFFu

/*
 * Continue a CRC-16/CCITT-FALSE (poly 0x1021, not reflected, no final xor) over @p data.
 *
 * The running value is passed in and returned so that the framer and the unframer can update
 * the CRC one wire byte at a time, as bytes are produced or arrive, without a second pass.
 * rpc_crc16("123456789", 9, RPC_CRC16_INIT) == 0x29B1.
 */
uint16_t rpc_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* One-byte step of rpc_crc16(), for byte state machines. */
uint16_t rpc_crc16_byte(uint8_t byte, uint16_t crc);

#ifdef __cplusplus
}
#endif

#endif /* RPC_SERVER_CRC16_H_ */
