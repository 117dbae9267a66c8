/*
 * Zephyr glue of the UART RPC server: the portable server (rpc_server/) behind the UART with
 * alias rpc-uart, the console (printk) on the chosen zephyr,console.
 *
 *   UART RX ISR --> ring buffer --> semaphore --> main thread --> rpc_server_feed()
 *   replies: rpc_server write callback --> uart_poll_out(), byte by byte, never dropped
 *
 * Boot facts survive a reset in a __noinit record (boot count, the cause a software reset or a
 * fatal error recorded before rebooting, the previous boot id). The console lines are evidence
 * for the harness and have fixed prefixes: "boot: ", "sleep_ms: sleeping ", "reset requested",
 * "fatal error: ", "rx overflow: ", "rpc: ", "reset timer: ", "torn reply: ".
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "zephyr_compat.h"

#include <rpc_server/server.h>

#include "app.h"
#include "fault_functions.h"

#define RPC_UART_NODE DT_ALIAS(rpc_uart)
#if !DT_NODE_HAS_STATUS(RPC_UART_NODE, okay)
#error "the RPC UART needs a devicetree alias rpc-uart to an enabled UART (see boards/*.overlay)"
#endif

BUILD_ASSERT(CONFIG_RPC_RX_RING_SIZE >= CONFIG_RPC_MAX_PACKET + 100,
	     "CONFIG_RPC_RX_RING_SIZE must be at least CONFIG_RPC_MAX_PACKET + 100");
BUILD_ASSERT(RPC_SERVER_MAX_PACKET == CONFIG_RPC_MAX_PACKET,
	     "rpc_server and the application disagree on the packet size");

#ifndef RPC_FIRMWARE_VERSION
#define RPC_FIRMWARE_VERSION "0.1.0"
#endif

/* ---- boot record that survives resets ------------------------------------------------------ */

#define PERSIST_MAGIC 0x52504342u /* "RPCB" */

/* What the firmware itself recorded just before it rebooted. */
enum persist_cause {
	PERSIST_CAUSE_NONE = 0,
	PERSIST_CAUSE_SOFTWARE = 0x534f4654u, /* "SOFT" */
	PERSIST_CAUSE_FATAL = 0x46415441u,    /* "FATA" */
};

struct persist {
	uint32_t magic;
	uint32_t boot_count;
	uint32_t cause;
	uint32_t check;
	uint64_t boot_id;
};

/* Not touched by the startup code: at power-on it holds whatever RAM held (zeros in QEMU). */
static __noinit struct persist persist;

/* splitmix64's finalizer: every input bit affects every output bit. */
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t persist_check(const struct persist *p)
{
	uint64_t h = mix64(((uint64_t)p->magic << 32) | p->boot_count);

	h = mix64(h ^ p->cause);
	h = mix64(h ^ p->boot_id);
	return (uint32_t)(h ^ (h >> 32));
}

static bool persist_valid(const struct persist *p)
{
	if (p->magic != PERSIST_MAGIC || p->check != persist_check(p)) {
		return false;
	}
	return p->cause == PERSIST_CAUSE_NONE || p->cause == PERSIST_CAUSE_SOFTWARE ||
	       p->cause == PERSIST_CAUSE_FATAL;
}

/* Record why the next boot happens; called just before a reboot. */
static void persist_record_cause(enum persist_cause cause)
{
	if (!persist_valid(&persist)) {
		/* Only before main() ran: start a record so that the cause is not lost. */
		persist.magic = PERSIST_MAGIC;
		persist.boot_count = 0;
		persist.boot_id = 0;
	}
	persist.cause = (uint32_t)cause;
	persist.check = persist_check(&persist);
}

/* Busy work whose duration in cycles follows the host's timing (QEMU without -icount). */
static uint32_t spin(uint32_t n)
{
	volatile uint32_t acc = 0;

	while (n-- > 0) {
		acc = acc + n;
	}
	return acc;
}

/*
 * A 64-bit id that differs on every boot, also across fresh QEMU processes that start with
 * identical RAM: the previous id and the boot count (different on each reboot of one machine)
 * and cycle-counter jitter around busy loops (different across processes), through mix64().
 *
 * Only readings where the counter moved count as samples: on QEMU's lm3s6965 the SysTick
 * counter sometimes stands still for the first milliseconds after power-on (k_cycle_get_32()
 * returns one value for thousands of reads), and sampling a frozen counter gave the same id on
 * a quarter of fresh QEMU boots. Returns the number of samples taken (less than
 * CONFIG_RPC_BOOT_ID_SAMPLES only if the counter never moved within the round limit).
 */
#define BOOT_ID_MAX_ROUNDS (CONFIG_RPC_BOOT_ID_SAMPLES * 1024u)

static unsigned int make_boot_id(uint64_t previous, uint32_t boot_count, uint64_t *boot_id)
{
	uint64_t state = mix64(previous ^ ((uint64_t)boot_count << 32) ^ 0x626f6f745f696421ull);
	uint32_t last = k_cycle_get_32();
	unsigned int samples = 0;
	uint32_t round;

	for (round = 0; round < BOOT_ID_MAX_ROUNDS && samples < CONFIG_RPC_BOOT_ID_SAMPLES;
	     round++) {
		uint32_t now;

		(void)spin(1000u + (last & 0xffu));
		now = k_cycle_get_32();
		if (now == last) {
			continue;
		}
		state = mix64(state ^ (((uint64_t)now << 32) | (uint32_t)(now - last)) ^ round);
		last = now;
		samples++;
	}
#ifdef APP_HAVE_ENTROPY
	state = mix64(state ^ (((uint64_t)sys_rand32_get() << 32) | sys_rand32_get()));
#endif
	*boot_id = state;
	return samples;
}

/* ---- the application ---------------------------------------------------------------------- */

struct app {
	const struct device *uart;
	bool rx_enabled;
	/* True while rpc_server_start() runs: its console line is the boot line. */
	bool booting;
	uint32_t reported_overflow_events;
	struct rpc_platform platform;
	struct rpc_server server;
};

/* Zero-initialised (BSS): the server's buffers take no flash for an initial image. */
static struct app app;

/*
 * Bytes still to hand straight back without framing (app.raw_echo): the baseline a benchmark
 * compares rpc.echo against. Read and written only by the main thread.
 */
static uint32_t raw_echo_remaining;

void app_raw_echo_start(uint32_t count)
{
	raw_echo_remaining = count;
}
static const struct device *const rpc_uart = DEVICE_DT_GET(RPC_UART_NODE);

/* Receive path: the ISR is the only producer, the main thread the only consumer. */
RING_BUF_DECLARE(rx_ring, CONFIG_RPC_RX_RING_SIZE);
static K_SEM_DEFINE(rx_sem, 0, 1);
/* Written only by the ISR. */
static volatile struct app_rx_stats rx_stats = {.ring_size = CONFIG_RPC_RX_RING_SIZE};

void app_rx_stats_get(struct app_rx_stats *out)
{
	unsigned int key = irq_lock();

	out->bytes = rx_stats.bytes;
	out->overflow_bytes = rx_stats.overflow_bytes;
	out->overflow_events = rx_stats.overflow_events;
	out->ring_size = rx_stats.ring_size;
	out->ring_peak = rx_stats.ring_peak;
	irq_unlock(key);
}

static void hex64(char out[17], uint64_t value)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 15; i >= 0; i--) {
		out[i] = digits[value & 0xfu];
		value >>= 4;
	}
	out[16] = '\0';
}

/* Put received bytes into the ring buffer, counting what does not fit. ISR or IRQs locked. */
static void rx_store(const uint8_t *data, uint32_t len)
{
	uint32_t put = ring_buf_put(&rx_ring, data, len);
	uint32_t used;

	rx_stats.bytes += len;
	if (put < len) {
		rx_stats.overflow_bytes += len - put;
		rx_stats.overflow_events++;
	}
	used = CONFIG_RPC_RX_RING_SIZE - ring_buf_space_get(&rx_ring);
	if (used > rx_stats.ring_peak) {
		rx_stats.ring_peak = used;
	}
}

/*
 * UART interrupt: move every received byte into the ring buffer. Nothing here waits, so the
 * receive interrupt is never held off for longer than one run of this function. A full ring
 * buffer drops the bytes, and the drop is counted and reported by the main thread.
 */
static void rpc_uart_isr(const struct device *dev, void *user_data)
{
	uint8_t buf[16];
	bool received = false;

	ARG_UNUSED(user_data);
	if (!uart_irq_update(dev)) {
		return;
	}
	while (uart_irq_rx_ready(dev)) {
		int n = uart_fifo_read(dev, buf, sizeof(buf));

		if (n <= 0) {
			break;
		}
		rx_store(buf, (uint32_t)n);
		received = true;
	}
	if (received) {
		k_sem_give(&rx_sem);
	}
}

/* app.torn_reply: bytes of the next reply still to send, then the action. Main thread only. */
static struct {
	bool armed;
	uint32_t remaining;
	enum fault_action action;
} tear;

static void tear_now(void);

/*
 * Server write callback: polled transmit, which waits for the UART and never drops a byte.
 * app.torn_reply cuts the reply it arms.
 */
static int rpc_uart_write(void *ctx, const uint8_t *data, size_t len)
{
	struct app *a = ctx;
	bool torn = false;
	size_t i;

	if (tear.armed && len >= tear.remaining) {
		len = tear.remaining;
		torn = true;
	} else if (tear.armed) {
		tear.remaining -= (uint32_t)len;
	}
	for (i = 0; i < len; i++) {
		uart_poll_out(a->uart, data[i]);
	}
	if (torn) {
		tear_now();
	}
	return 0;
}

/* Reboot at once. Also called from the fatal error handler, in exception context. */
static void reboot_now(void)
{
	/*
	 * On the lm3s6965 (Zephyr 2.5) a reboot is a jump to __reset: the UART keeps its interrupt
	 * mask and the NVIC keeps its enables. Mask the receive interrupt so that no byte can
	 * interrupt the next boot before rpc_uart_early_init() has installed the callback again.
	 */
	if (app.rx_enabled) {
		uart_irq_rx_disable(app.uart);
		app.rx_enabled = false;
	}
	/* Let the last console bytes leave the UART. */
	k_busy_wait(2000);
	sys_reboot(SYS_REBOOT_COLD);
}

/* ---- platform hooks of the portable server ------------------------------------------------ */

static void app_sleep_ms(void *ctx, uint32_t ms)
{
	ARG_UNUSED(ctx);
	/* The harness waits for this line before it acts during the call. */
	printk("sleep_ms: sleeping %u ms\n", (unsigned int)ms);
	k_msleep((int32_t)ms);
}

static void app_reset(void *ctx)
{
	ARG_UNUSED(ctx);
	printk("reset requested\n");
	persist_record_cause(PERSIST_CAUSE_SOFTWARE);
	reboot_now();
}

/* ---- fault functions (faults/fault_functions.h) ------------------------------------------ */

void fault_hook_fatal(void)
{
	printk("app.fatal: raising a kernel panic\n");
	k_panic();
}

/* The reset timer fires in an ISR; the reset or the panic happens in the system work queue. */
static enum fault_action timer_action;

static void fault_timer_work_handler(struct k_work *work)
{
	ARG_UNUSED(work);
	if (timer_action == FAULT_ACTION_FATAL) {
		printk("reset timer: raising a kernel panic\n");
		k_panic();
	}
	app_reset(NULL);
}

static K_WORK_DEFINE(fault_timer_work, fault_timer_work_handler);

static void fault_timer_expired(struct k_timer *timer)
{
	ARG_UNUSED(timer);
	k_work_submit(&fault_timer_work);
}

static K_TIMER_DEFINE(fault_timer, fault_timer_expired, NULL);

/* app.reset_after_ms: the delay of a reset timer still to start, or -1. Main thread only. */
static int64_t timer_pending_ms = -1;

void fault_hook_schedule(uint32_t ms, enum fault_action action)
{
	timer_action = action;
	timer_pending_ms = ms;
}

/* Called when a request has been handled and its reply sent. */
static void start_pending_timer(void)
{
	if (timer_pending_ms < 0) {
		return;
	}
	printk("reset timer: %s in %u ms\n", timer_action == FAULT_ACTION_FATAL ? "fatal" : "rpc",
	       (unsigned int)timer_pending_ms);
	k_timer_start(&fault_timer, K_MSEC(timer_pending_ms), K_NO_WAIT);
	timer_pending_ms = -1;
}

void fault_hook_tear_next_reply(uint32_t cut, enum fault_action action)
{
	tear.armed = true;
	tear.remaining = cut;
	tear.action = action;
}

static void tear_now(void)
{
	switch (tear.action) {
	case FAULT_ACTION_RESET:
		app_reset(NULL);
		break;
	case FAULT_ACTION_FATAL:
		fault_hook_fatal();
		break;
	case FAULT_ACTION_HANG:
		printk("torn reply: hanging until reset\n");
		for (;;) {
			k_sleep(K_FOREVER);
		}
	}
}

static uint64_t app_uptime_ms(void *ctx)
{
	int64_t ms = k_uptime_get();

	ARG_UNUSED(ctx);
	return ms > 0 ? (uint64_t)ms : 0u;
}

static void app_console(void *ctx, const char *line, size_t len)
{
	struct app *a = ctx;
	char text[RPC_SERVER_CONSOLE_LINE + 1];

	if (len > RPC_SERVER_CONSOLE_LINE) {
		len = RPC_SERVER_CONSOLE_LINE;
	}
	memcpy(text, line, len);
	text[len] = '\0';
	if (a->booting && strncmp(text, "boot: ", 6) == 0) {
		char id[17];

		/* The server's boot line, plus what only the console shows. */
		hex64(id, a->platform.boot_id);
		printk("%s boot-count %u boot-id %s\n", text, (unsigned int)a->platform.boot_count,
		       id);
		return;
	}
	printk("%s\n", text);
}

/* ---- fatal errors ------------------------------------------------------------------------- */

/*
 * Replaces Zephyr's default policy (halt): record the cause and reboot, so that a crash is a
 * kind of reset the harness can see ("fatal-error") rather than a device that stops answering.
 */
void k_sys_fatal_error_handler(unsigned int reason, const app_esf_t *esf)
{
	ARG_UNUSED(esf);
	LOG_PANIC();
	persist_record_cause(PERSIST_CAUSE_FATAL);
	printk("fatal error: reason %u, rebooting\n", reason);
	reboot_now();
}

/* ---- main --------------------------------------------------------------------------------- */

static void boot_facts(struct rpc_platform *platform)
{
	uint64_t previous_id = 0;
	unsigned int samples;

	if (persist_valid(&persist)) {
		switch (persist.cause) {
		case PERSIST_CAUSE_SOFTWARE:
			platform->reset_cause = "software";
			break;
		case PERSIST_CAUSE_FATAL:
			platform->reset_cause = "fatal-error";
			break;
		default:
			/* A reset that the firmware did not ask for: the reset pin, QEMU's system_reset. */
			platform->reset_cause = "reset-pin";
			break;
		}
		platform->boot_count = persist.boot_count + 1u;
		if (platform->boot_count == 0u) {
			platform->boot_count = 1u;
		}
		previous_id = persist.boot_id;
	} else {
		platform->reset_cause = "power-on";
		platform->boot_count = 1u;
	}
	samples = make_boot_id(previous_id, platform->boot_count, &platform->boot_id);
	if (samples < CONFIG_RPC_BOOT_ID_SAMPLES) {
		printk("boot-id: the cycle counter moved only %u times in %u rounds: this boot id "
		       "may repeat on another power-on boot\n",
		       samples, (unsigned int)BOOT_ID_MAX_ROUNDS);
	}

	/* The cause is read once: a reset nobody records next is a reset-pin reset. */
	persist.magic = PERSIST_MAGIC;
	persist.boot_count = platform->boot_count;
	persist.cause = PERSIST_CAUSE_NONE;
	persist.boot_id = platform->boot_id;
	persist.check = persist_check(&persist);
}

static uint8_t fold_seed(uint64_t id)
{
	uint8_t seed = 0;
	unsigned int i;

	for (i = 0; i < 8; i++) {
		seed ^= (uint8_t)(id >> (8 * i));
	}
	return seed;
}

/* Tell the console and the host (a Log) about bytes the ring buffer had no room for. */
static void report_overflow(struct app *a)
{
	struct app_rx_stats rx;
	char text[120];
	int len;

	if (rx_stats.overflow_events == a->reported_overflow_events) {
		return;
	}
	app_rx_stats_get(&rx);
	a->reported_overflow_events = rx.overflow_events;
	len = snprintk(text, sizeof(text),
		       "rx overflow: %u bytes dropped in %u events so far, ring %u bytes",
		       (unsigned int)rx.overflow_bytes, (unsigned int)rx.overflow_events,
		       (unsigned int)rx.ring_size);
	if (len < 0) {
		return;
	}
	if ((size_t)len >= sizeof(text)) {
		len = (int)sizeof(text) - 1;
	}
	printk("%s\n", text);
	(void)rpc_server_log(&a->server, text, (size_t)len);
}

/*
 * Take over the RPC UART's receive interrupt as early as possible: at PRE_KERNEL_2, right after
 * the UART driver's init and before interrupts are first enabled (when the main thread starts).
 *
 * A reset that leaves the UART as it was (Zephyr 2.5's software reboot on the lm3s6965, and
 * QEMU's system_reset, which does not reset that machine's UART) can leave the receive
 * interrupt unmasked. If the host sends a byte before our callback is installed, the driver's
 * ISR finds no callback, nobody reads the byte, the level interrupt stays asserted and the CPU
 * never leaves it: main() would never run. With the callback installed before interrupts are
 * enabled, bytes that arrive during boot simply wait in the ring buffer for the server.
 */
static int rpc_uart_early_init(APP_SYS_INIT_ARGS)
{
	struct app *a = &app;
	unsigned char byte;

	APP_SYS_INIT_UNUSED();
	a->uart = rpc_uart;
	if (!device_is_ready(a->uart)) {
		return 0; /* main() reports it */
	}
	uart_irq_rx_disable(a->uart);
	uart_irq_tx_disable(a->uart);
	uart_irq_callback_user_data_set(a->uart, rpc_uart_isr, a);
	a->rx_enabled = true;
	uart_irq_rx_enable(a->uart);

	/*
	 * A byte that arrived before the receive interrupt was enabled raises no interrupt on the
	 * CMSDK UART (mps2_an385), which signals reception as an event, and it blocks reception
	 * until it is read. Take such bytes now (interrupts are still locked here). main() drains
	 * the ring buffer before it first waits for the ISR's signal.
	 */
	while (uart_poll_in(a->uart, &byte) == 0) {
		rx_store(&byte, 1);
	}
	return 0;
}

SYS_INIT(rpc_uart_early_init, PRE_KERNEL_2, 0);

static struct rpc_server_config server_config(struct app *a)
{
	struct rpc_server_config config;

	memset(&config, 0, sizeof(config));
	config.write = rpc_uart_write;
	config.write_ctx = a;
	config.platform = &a->platform;
	config.functions = app_functions;
	config.num_functions = app_num_functions;
	config.user_ctx = &a->server;
	config.nonce_seed = fold_seed(a->platform.boot_id);
	return config;
}

/* int main: Zephyr >= 3.4 requires it; 2.5 calls main() as void and ignores the value. */
int main(void)
{
	struct app *a = &app;
	struct rpc_server_config config;
	uint8_t chunk[CONFIG_RPC_RX_CHUNK];

	a->platform.ctx = a;
	a->platform.sleep_ms = app_sleep_ms;
	a->platform.reset = app_reset;
	a->platform.uptime_ms = app_uptime_ms;
	a->platform.console = app_console;
	a->platform.firmware_version = RPC_FIRMWARE_VERSION;
	a->platform.board = CONFIG_BOARD;
	boot_facts(&a->platform);

	config = server_config(a);
	if (rpc_server_init(&a->server, &config) != 0) {
		printk("rpc: rpc_server_init failed\n");
		return 0;
	}
	if (!a->rx_enabled) {
		printk("rpc: uart %s is not ready\n", rpc_uart->name);
		return 0;
	}
	a->booting = true;
	if (rpc_server_start(&a->server) != 0) {
		printk("rpc: cannot send the wake-up packet\n");
	}
	a->booting = false;
	printk("rpc: uart %s, max packet %u, max payload %u, rx ring %u bytes\n", a->uart->name,
	       (unsigned int)RPC_SERVER_MAX_PACKET, (unsigned int)RPC_SERVER_MAX_PAYLOAD,
	       (unsigned int)CONFIG_RPC_RX_RING_SIZE);

	/* Drain first: bytes may have been waiting since rpc_uart_early_init(). */
	for (;;) {
		uint32_t n;

		while ((n = ring_buf_get(&rx_ring, chunk, sizeof(chunk))) > 0) {
			uint32_t raw = MIN(n, raw_echo_remaining);

			/* app.raw_echo: the same receive and transmit path, without the protocol. */
			(void)rpc_uart_write(a, chunk, raw);
			raw_echo_remaining -= raw;
			if (n > raw) {
				rpc_server_feed(&a->server, chunk + raw, n - raw);
				start_pending_timer();
			}
		}
		report_overflow(a);
		(void)k_sem_take(&rx_sem, K_FOREVER);
	}
}
