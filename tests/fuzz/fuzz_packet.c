/* fuzz_packet.c — libFuzzer target for the whole packet path: link layer
 * (link_find_ip) → reassembly (reassembly_ip_packet, libnids) → the real decoders,
 * wired as cli/pipeline.c does but with no store: each finished session is checked
 * against the invariants of fuzz_check.h and freed.
 *
 * Input: byte 0 picks the link type (index into link_types[] below, modulo its size);
 * then frames, each  [time byte][length: 2 bytes big-endian][frame bytes]. The time byte
 * v advances the clock by (v & 63) << (5 * (v >> 6)) ms (up to ~34 min, so the 30 s SYN
 * timeout and the idle timeout are reachable).
 *
 * The path itself (callbacks, checks) is shared with fuzz_pcapfile: fuzz_decoder.c.
 * reassembly is process-global (libnids): it is started in LLVMFuzzerInitialize with a
 * small stream table and restarted (reassembly_finish + reassembly_start) every
 * FUZZ_PACKET_RESTART inputs (environment variable, default 1: every input is decoded
 * from a fresh state, so crashes reproduce from the input alone). */
#include "fuzz_decoder.h"

#include <pcap/pcap.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libnids' nids_init() forgets the callback list of the previous run without freeing it
 * (16 bytes per nids_register_tcp): harmless for mailtap, which starts reassembly once
 * per process, but LeakSanitizer would report it at every restart here. libnids has no
 * frame pointers, so the fast unwinder stops at its allocator, test_malloc: that is what
 * we must name (this also hides any other leak of memory libnids allocated; mailtap's
 * own allocations are still checked). */
const char *__lsan_default_suppressions(void)
{
    return "leak:register_callback\nleak:test_malloc\n";
}

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif

/* Every link type mailtap supports (make_seeds.py maps pcap link types to these indexes). */
static const int link_types[] = {
    DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, 101 /* LINKTYPE_RAW */,
    DLT_IPV4, DLT_IPV6, DLT_NULL, DLT_LOOP,
};
#define LINK_TYPE_COUNT (sizeof link_types / sizeof link_types[0])

#define FUZZ_START_US 1767225600000000LL   /* 2026-01-01T00:00:00Z */
#define TICK_INTERVAL_US 1000000           /* as cli/pipeline.c */

static long restart_every = 1;
static long inputs_since_start;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    const char *every = getenv("FUZZ_PACKET_RESTART");
    if (every && atol(every) > 0)
        restart_every = atol(every);
    fuzz_path_init(false);
    fuzz_path_start(false);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!fuzz_path_running()) {
        fuzz_path_start(false);
        inputs_since_start = 0;
    }
    int dlt = link_types[data[0] % LINK_TYPE_COUNT];
    /* A fresh reassembler starts the clock again; a shared one sees time go on. */
    static int64_t clock_us = FUZZ_START_US;
    int64_t now = inputs_since_start == 0 ? FUZZ_START_US : clock_us, next_tick = 0;
    size_t pos = 1;
    while (size - pos >= 3) {
        uint8_t t = data[pos];
        size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        now += (int64_t)((t & 63) << (5 * (t >> 6))) * 1000;
        fuzz_path_frame(dlt, data + pos, len, now);
        pos += len;
        if (now >= next_tick) {
            fuzz_path_tick(now);
            next_tick = now + TICK_INTERVAL_US;
        }
    }
    clock_us = now;
    if (++inputs_since_start >= restart_every)
        fuzz_path_finish(now, now);
    return 0;
}
