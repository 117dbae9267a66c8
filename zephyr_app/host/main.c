/*
 * The RPC server as a POSIX process: the `host` board.
 *
 * Protocol bytes on stdin (fd 0) and stdout (fd 1), with raw read(2)/write(2) and no stdio
 * buffering, so a reply is on the pipe when the handler returns. The device "console" (boot line,
 * session changes, logs) goes to stderr, one line per event.
 *
 *   rpc_host_server --board NAME --boot-count-file PATH [--reset-cause CAUSE]
 *
 * rpc.reset re-executes /proc/self/exe in the same process (same pid, same pipes) with
 * "--reset-cause software", which is what a board reset looks like from the host's side of a
 * UART: the line stays, the firmware starts over and sends its wake-up packet.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <rpc_server/server.h>

#ifndef RPC_FIRMWARE_VERSION
#define RPC_FIRMWARE_VERSION "0.1.0"
#endif

struct host {
	int argc;
	char **argv;
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

static int write_all(void *ctx, const uint8_t *data, size_t len)
{
	(void)ctx;
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
	return 0;
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

/* Restart in place: same pid, same fds; argv gets "--reset-cause software". */
static void host_reset(void *ctx)
{
	struct host *host = ctx;
	char **argv = calloc((size_t)host->argc + 3, sizeof(*argv));
	int i, n = 0;

	console_printf("reset requested");
	if (argv == NULL) {
		console_printf("reset failed: out of memory");
		_exit(70);
	}
	for (i = 0; i < host->argc; i++) {
		if (i > 0 && strcmp(host->argv[i], "--reset-cause") == 0) {
			i++;
			continue;
		}
		argv[n++] = host->argv[i];
	}
	argv[n++] = "--reset-cause";
	argv[n++] = "software";
	argv[n] = NULL;
	execv("/proc/self/exe", argv);
	console_printf("reset failed: execv /proc/self/exe: %s", strerror(errno));
	_exit(70);
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

int main(int argc, char **argv)
{
	static struct host host;
	struct rpc_server_config config;
	uint8_t buf[4096];

	host.argc = argc;
	host.argv = argv;
	if (parse_args(&host, argc, argv) != 0) {
		usage(argv[0]);
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
	}
}
