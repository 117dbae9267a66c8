/*
 * The RPC server as a POSIX process: the `host` board.
 *
 * Protocol bytes on stdin (fd 0) and stdout (fd 1), with raw read(2)/write(2) and no stdio
 * buffering, so a reply is on the pipe when the handler returns. The device "console" (boot line,
 * session changes, logs) goes to stderr, one line per event.
 *
 *   rpc_host_server --board NAME --boot-count-file PATH [--reset-cause CAUSE]
 *
 * A reset re-executes /proc/self/exe in the same process (same pid, same pipes) with
 * "--reset-cause CAUSE", which is what a board reset looks like from the host's side of a UART:
 * the line stays, the firmware starts over and sends its wake-up packet. The boot count file
 * plays the part of RAM that survives a reset. The reset kinds (docs/reset-semantics.md):
 *
 *   rpc    rpc.reset, or app.reset_after_ms(ms, "rpc")        cause "software"
 *   hard   SIGUSR1 from the harness: the reset pin            cause "reset-pin"
 *   fatal  abort() (app.fatal, the fault functions): SIGABRT  cause "fatal-error"
 *   power  the harness kills the process and deletes the boot count file: "power-on"
 *
 * The harness starts the server with SIGUSR1 blocked; it is unblocked once its handler is in
 * place, so a reset pin asserted during boot is held until the firmware can act on it, as a
 * real reset line is. The signal mask survives execv, so the same holds after every reset.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <rpc_server/server.h>

#include "fault_functions.h"

#ifndef RPC_FIRMWARE_VERSION
#define RPC_FIRMWARE_VERSION "0.1.0"
#endif

/* Room for argv on a restart: the options above and "--reset-cause CAUSE". */
#define HOST_MAX_ARGS 16

struct host {
	const char *board;
	const char *boot_count_file;
	const char *reset_cause;
	struct timespec started;
	struct rpc_platform platform;
	struct rpc_server server;
};

static void console_line(const char *line, size_t len)
{
	struct iovec iov[2] = {
		{.iov_base = (void *)line, .iov_len = len},
		{.iov_base = "\n", .iov_len = 1},
	};

	/* One writev per line so that lines from a restarted process do not interleave. */
	(void)!writev(STDERR_FILENO, iov, 2);
}

static void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void console_printf(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	console_line(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void host_console(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	console_line(line, len);
}

static void host_sleep_ms(void *ctx, uint32_t ms)
{
	struct timespec left = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};

	(void)ctx;
	/* The console line is the ready signal for tests that act while a call is in progress. */
	console_printf("sleep_ms: sleeping %u ms", (unsigned int)ms);
	while (nanosleep(&left, &left) != 0 && errno == EINTR) {
	}
}

static uint64_t host_uptime_ms(void *ctx)
{
	struct host *host = ctx;
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (int64_t)(now.tv_sec - host->started.tv_sec) * 1000 +
	     (now.tv_nsec - host->started.tv_nsec) / 1000000;
	return ms > 0 ? (uint64_t)ms : 0;
}

/* ---- resets ----------------------------------------------------------------------------- */

/*
 * argv for a restart, built once at startup so that a restart needs only execv(), which is
 * async-signal-safe: the reset pin, the reset timer and the fatal error arrive as signals.
 */
static char *restart_argv[HOST_MAX_ARGS + 3];
static int restart_cause_slot;

/* What the reset timer (app.reset_after_ms) does when it fires; set before it is armed. */
static volatile sig_atomic_t timer_action = FAULT_ACTION_RESET;

/* app.torn_reply: bytes of the next reply still to send, then the action. */
static struct {
	bool armed;
	uint32_t remaining;
	enum fault_action action;
} tear;

static void console_raw(const char *line)
{
	(void)!write(STDERR_FILENO, line, strlen(line));
}

static int prepare_restart(int argc, char **argv)
{
	int i, n = 0;

	if (argc > HOST_MAX_ARGS) {
		fprintf(stderr, "%s: too many arguments\n", argv[0]);
		return -1;
	}
	for (i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--reset-cause") == 0) {
			i++;
			continue;
		}
		restart_argv[n++] = argv[i];
	}
	restart_argv[n++] = "--reset-cause";
	restart_cause_slot = n++;
	restart_argv[n] = NULL;
	return 0;
}

/* Start the firmware over in this process with @p cause; async-signal-safe; never returns. */
static void restart(const char *cause)
{
	restart_argv[restart_cause_slot] = (char *)cause;
	execv("/proc/self/exe", restart_argv);
	console_raw("reset failed: execv /proc/self/exe\n");
	_exit(70);
}

static void software_reset(void)
{
	console_raw("reset requested\n");
	restart("software");
}

/* rpc.reset */
static void host_reset(void *ctx)
{
	(void)ctx;
	software_reset();
}

void fault_hook_fatal(void)
{
	console_raw("app.fatal: raising a fatal error (abort)\n");
	abort();
}

/* The fatal error handler: like the Zephyr firmware's, it records the cause and reboots. */
static void on_fatal_signal(int sig)
{
	(void)sig;
	console_raw("fatal error: SIGABRT, rebooting\n");
	restart("fatal-error");
}

static void on_reset_pin(int sig)
{
	(void)sig;
	console_raw("reset pin asserted\n");
	restart("reset-pin");
}

static void on_reset_timer(int sig)
{
	(void)sig;
	if (timer_action == FAULT_ACTION_FATAL) {
		console_raw("reset timer: raising a fatal error (abort)\n");
		abort();
	}
	software_reset();
}

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
	struct itimerval when = {{0, 0}, {0, 0}};
	uint32_t ms;

	if (timer_pending_ms < 0) {
		return;
	}
	ms = (uint32_t)timer_pending_ms;
	timer_pending_ms = -1;
	when.it_value.tv_sec = ms / 1000u;
	when.it_value.tv_usec = (long)(ms % 1000u) * 1000L;
	if (ms == 0) {
		when.it_value.tv_usec = 1; /* 0 would disarm the timer */
	}
	console_printf("reset timer: %s in %u ms",
		       timer_action == FAULT_ACTION_FATAL ? "fatal" : "rpc", (unsigned int)ms);
	(void)setitimer(ITIMER_REAL, &when, NULL);
}

void fault_hook_tear_next_reply(uint32_t cut, enum fault_action action)
{
	tear.armed = true;
	tear.remaining = cut;
	tear.action = action;
}

/* The torn reply has been cut: carry out its action. Never returns. */
static void tear_now(void)
{
	switch (tear.action) {
	case FAULT_ACTION_RESET:
		software_reset();
		break;
	case FAULT_ACTION_FATAL:
		fault_hook_fatal();
		break;
	case FAULT_ACTION_HANG:
		console_printf("torn reply: hanging until reset");
		for (;;) {
			pause(); /* only a reset (a signal or the harness's kill) ends this */
		}
	}
	_exit(70);
}

static int install_signal_handlers(void)
{
	static const struct {
		int sig;
		void (*handler)(int);
	} table[] = {
		{SIGABRT, on_fatal_signal},
		{SIGUSR1, on_reset_pin},
		{SIGALRM, on_reset_timer},
	};
	struct sigaction action;
	sigset_t unblock;
	size_t i;

	sigemptyset(&unblock);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		memset(&action, 0, sizeof(action));
		action.sa_handler = table[i].handler;
		sigfillset(&action.sa_mask);
		if (sigaction(table[i].sig, &action, NULL) != 0) {
			return -1;
		}
		sigaddset(&unblock, table[i].sig);
	}
	/* Blocked by the harness, or by the handler that restarted us: held signals arrive now. */
	return sigprocmask(SIG_UNBLOCK, &unblock, NULL);
}

/* The server's write callback: a reply on the pipe when it returns; app.torn_reply cuts it. */
static int write_all(void *ctx, const uint8_t *data, size_t len)
{
	bool torn = false;

	(void)ctx;
	if (tear.armed && len >= tear.remaining) {
		len = tear.remaining;
		torn = true;
	} else if (tear.armed) {
		tear.remaining -= (uint32_t)len;
	}
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, data, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	if (torn) {
		tear_now();
	}
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --board NAME --boot-count-file PATH [--reset-cause CAUSE]\n"
		"Speaks the RPC protocol (docs/protocol.md) on stdin/stdout; console on stderr.\n",
		prog);
}

static int parse_args(struct host *host, int argc, char **argv)
{
	int i;

	host->reset_cause = "power-on";
	for (i = 1; i < argc; i++) {
		const char *opt = argv[i];

		if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
			usage(argv[0]);
			exit(0);
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: %s needs a value\n", argv[0], opt);
			return -1;
		}
		if (strcmp(opt, "--board") == 0) {
			host->board = argv[++i];
		} else if (strcmp(opt, "--boot-count-file") == 0) {
			host->boot_count_file = argv[++i];
		} else if (strcmp(opt, "--reset-cause") == 0) {
			host->reset_cause = argv[++i];
		} else {
			fprintf(stderr, "%s: unknown option %s\n", argv[0], opt);
			return -1;
		}
	}
	if (host->board == NULL || host->boot_count_file == NULL) {
		fprintf(stderr, "%s: --board and --boot-count-file are required\n", argv[0]);
		return -1;
	}
	return 0;
}

/* Read, increment and store the boot count; a missing file counts as 0 boots. */
static int bump_boot_count(const char *path, uint32_t *count)
{
	char buf[32];
	char tmp[4096];
	unsigned long value = 0;
	ssize_t n;
	int fd, len;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			value = strtoul(buf, NULL, 10);
		}
	} else if (errno != ENOENT) {
		fprintf(stderr, "boot count file %s: %s\n", path, strerror(errno));
		return -1;
	}
	value++;
	*count = (uint32_t)value;

	/* Temp file + rename: a crash mid-write never leaves a truncated count behind. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		fprintf(stderr, "boot count file path too long: %s\n", path);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%lu\n", value);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)len) != len || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		fprintf(stderr, "cannot write boot count file %s: %s\n", path, strerror(errno));
		if (fd >= 0) {
			unlink(tmp);
		}
		return -1;
	}
	return 0;
}

static uint64_t random_boot_id(void)
{
	uint64_t id = 0;
	int fd;

	if (getrandom(&id, sizeof(id), 0) == (ssize_t)sizeof(id)) {
		return id;
	}
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!read(fd, &id, sizeof(id));
		close(fd);
	}
	if (id == 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		id = ((uint64_t)now.tv_sec << 32) ^ (uint64_t)now.tv_nsec ^ (uint64_t)getpid();
	}
	return id;
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

/* A terminal on stdin would echo and translate bytes: make it a raw 8-bit line. */
static void make_raw(int fd)
{
	struct termios tio;

	if (isatty(fd) && tcgetattr(fd, &tio) == 0) {
		cfmakeraw(&tio);
		(void)tcsetattr(fd, TCSANOW, &tio);
	}
}

/* After the built-ins: app.fatal (9), app.reset_after_ms (10), app.torn_reply (11). */
static const struct rpc_function host_functions[] = {
	{"app.fatal", fault_fn_fatal},
	{"app.reset_after_ms", fault_fn_reset_after_ms},
	{"app.torn_reply", fault_fn_torn_reply},
};

int main(int argc, char **argv)
{
	static struct host host;
	struct rpc_server_config config;
	uint8_t buf[4096];

	if (parse_args(&host, argc, argv) != 0) {
		usage(argv[0]);
		return 2;
	}
	if (prepare_restart(argc, argv) != 0 || install_signal_handlers() != 0) {
		return 2;
	}
	/* A host that goes away must not kill us with SIGPIPE: we exit on EOF instead. */
	signal(SIGPIPE, SIG_IGN);
	make_raw(STDIN_FILENO);
	make_raw(STDOUT_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &host.started);

	host.platform.ctx = &host;
	host.platform.sleep_ms = host_sleep_ms;
	host.platform.reset = host_reset;
	host.platform.uptime_ms = host_uptime_ms;
	host.platform.console = host_console;
	host.platform.firmware_version = RPC_FIRMWARE_VERSION;
	host.platform.board = host.board;
	host.platform.reset_cause = host.reset_cause;
	host.platform.boot_id = random_boot_id();
	if (bump_boot_count(host.boot_count_file, &host.platform.boot_count) != 0) {
		return 1;
	}

	memset(&config, 0, sizeof(config));
	config.write = write_all;
	config.platform = &host.platform;
	config.functions = host_functions;
	config.num_functions = sizeof(host_functions) / sizeof(host_functions[0]);
	config.nonce_seed = fold_seed(host.platform.boot_id);
	if (rpc_server_init(&host.server, &config) != 0) {
		console_printf("rpc_server_init failed");
		return 1;
	}
	if (rpc_server_start(&host.server) != 0) {
		console_printf("cannot send the wake-up packet: %s", strerror(errno));
	}

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n == 0) {
			return 0;
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			console_printf("read stdin: %s", strerror(errno));
			return 1;
		}
		rpc_server_feed(&host.server, buf, (size_t)n);
		start_pending_timer();
	}
}
