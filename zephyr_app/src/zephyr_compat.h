/*
 * Zephyr headers of the application, for Zephyr 2.5 and for current releases.
 *
 * Zephyr 3.1 moved every public header under <zephyr/...>, and some headers moved on their own
 * before that (power/reboot.h became sys/reboot.h, random/rand32.h became random/random.h), so
 * each one is picked by __has_include rather than by a version number.
 */
#ifndef APP_ZEPHYR_COMPAT_H_
#define APP_ZEPHYR_COMPAT_H_

#if !defined(__has_include)
#error "the compiler must support __has_include (GCC >= 5, any Clang)"
#endif

/*
 * The application builds with -Wall -Wextra -Werror; Zephyr's headers are not written for
 * -Wextra (2.5's uart.h has inline stubs with unused parameters), so that one warning is off
 * for them only.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

#if __has_include(<zephyr/kernel.h>)
#include <zephyr/kernel.h>
#include <zephyr/device.h>
#include <zephyr/devicetree.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/fatal.h>
#include <zephyr/init.h>
#include <zephyr/linker/section_tags.h>
#include <zephyr/logging/log_ctrl.h>
#include <zephyr/sys/printk.h>
#include <zephyr/sys/reboot.h>
#include <zephyr/sys/ring_buffer.h>
#include <zephyr/version.h>
#else
#include <zephyr.h>
#include <kernel.h>
#include <device.h>
#include <devicetree.h>
#include <drivers/uart.h>
#include <fatal.h>
#include <init.h>
#include <linker/section_tags.h>
#include <logging/log_ctrl.h>
#include <sys/printk.h>
#include <sys/ring_buffer.h>
#include <version.h>
#if __has_include(<sys/reboot.h>)
#include <sys/reboot.h>
#else
#include <power/reboot.h>
#endif
#endif

/* A real entropy source, if the board has one and the build enabled it: mixed into the boot id. */
#if defined(CONFIG_ENTROPY_GENERATOR) && defined(CONFIG_ENTROPY_HAS_DRIVER) &&                  \
	!defined(CONFIG_TEST_RANDOM_GENERATOR)
#define APP_HAVE_ENTROPY 1
#if __has_include(<zephyr/random/random.h>)
#include <zephyr/random/random.h>
#elif __has_include(<zephyr/random/rand32.h>)
#include <zephyr/random/rand32.h>
#else
#include <random/rand32.h>
#endif
#endif

#pragma GCC diagnostic pop

/* The exception frame type of k_sys_fatal_error_handler(): renamed in Zephyr 3.7. */
#if defined(ZEPHYR_VERSION_CODE) && ZEPHYR_VERSION_CODE >= ZEPHYR_VERSION(3, 7, 0)
typedef struct arch_esf app_esf_t;
#else
typedef z_arch_esf_t app_esf_t;
#endif

/* SYS_INIT functions lost their (unused) device argument in Zephyr 3.4. */
#if defined(ZEPHYR_VERSION_CODE) && ZEPHYR_VERSION_CODE >= ZEPHYR_VERSION(3, 4, 0)
#define APP_SYS_INIT_ARGS void
#define APP_SYS_INIT_UNUSED() ((void)0)
#else
#define APP_SYS_INIT_ARGS const struct device *app_sys_init_unused
#define APP_SYS_INIT_UNUSED() ARG_UNUSED(app_sys_init_unused)
#endif

#endif /* APP_ZEPHYR_COMPAT_H_ */
