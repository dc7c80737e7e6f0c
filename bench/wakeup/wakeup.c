/*
 * What one wake-up costs on this host: a thread that sleeps in poll() for SLEEP_MS, N times,
 * and the CPU the process was charged for it, in microseconds per wake-up, as JSON. Nothing
 * else happens, so it is the floor under every wake-up of a worker that sleeps between
 * events: the timer, the switch into the thread and back out. Bare metal charges a few
 * microseconds; a virtual machine that traps to its hypervisor on these, ten times that.
 *
 *   wakeup [N [SLEEP_MS]]
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static double cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
           ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 300;
    int sleep_ms = argc > 2 ? atoi(argv[2]) : 10;
    if (n <= 0 || sleep_ms < 0)
        return 2;
    double c0 = cpu_us();
    for (int i = 0; i < n; i++)
        poll(NULL, 0, sleep_ms);
    printf("{\"wakeups\": %d, \"sleep_ms\": %d, \"cpu_us_per_wakeup\": %.2f}\n", n, sleep_ms,
           (cpu_us() - c0) / n);
    return 0;
}
