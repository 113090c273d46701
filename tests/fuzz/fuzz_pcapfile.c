/* fuzz_pcapfile.c — libFuzzer target for everything `mailtap read FILE` does short of the
 * store: the input is a whole capture file (classic pcap in either byte order, micro- or
 * nanosecond, or pcapng; any link type), written to a memfd and opened by path
 * ("/proc/self/fd/N") through capture/source.c (capture_open_files, capture_next), then
 * each frame goes link_find_ip → reassembly → the decoders, tls_follow_* and dnswatch
 * (UDP and TCP port 53) as in cli/pipeline.c's run_loop: the frame's own link type and
 * capture time, timers once a second of capture time, reassembly_finish(0) and
 * dns_watch_finish(last packet time) at the end. The path and its checks (every session,
 * attempt and DNS row passes fuzz_check_session; every stream opened is closed exactly
 * once) are shared with fuzz_packet: fuzz_decoder.c.
 *
 * Checked here too: capture_next only ever answers PACKET, ERROR (with a message) or END
 * for a file, and END stays END; a packet has a supported link type and is counted by
 * capture_get_stats.
 *
 * Reassembly is restarted for every input (libnids is process-global), so a crash
 * reproduces from the input alone. */
#include "capture/linklayer.h"
#include "capture/source.h"
#include "fuzz_check.h"
#include "fuzz_decoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libnids' nids_init() forgets the previous callback list: see fuzz_packet.c. */
const char *__lsan_default_suppressions(void)
{
    return "leak:register_callback\nleak:test_malloc\n";
}

#define TICK_INTERVAL_US 1000000   /* as cli/pipeline.c */

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    memfd = memfd_create("fuzz_pcapfile", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("fuzz_pcapfile: memfd_create");
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    fuzz_path_init(true);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) < 0) {
        perror("fuzz_pcapfile: ftruncate");
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("fuzz_pcapfile: pwrite");
            abort();
        }
        done += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(data, size);
    const char *const paths[] = { path };
    struct capture_source *source = capture_open_files(paths, 1);
    if (!source)
        return 0;
    /* No port 53 anywhere in the file (frames are stored verbatim, ports big-endian):
     * no DNS row can come, so the costly dns_watch is left out. */
    fuzz_path_start(memmem(data, size, "\0\x35", 2) != NULL);

    struct capture_packet packet;
    int64_t next_tick = 0, last_ts = 0;
    uint64_t packets = 0;
    int rc;
    while ((rc = capture_next(source, &packet)) != CAPTURE_END) {
        if (rc == CAPTURE_ERROR) {
            const char *why = capture_error(source);
            if (!why || !why[0])
                fuzz_fail("CAPTURE_ERROR without a message");
            continue;
        }
        if (rc != CAPTURE_PACKET)
            fuzz_fail("capture_next returned %d for a file", rc);
        packets++;
        if (!link_type_supported(packet.dlt))
            fuzz_fail("a packet of unsupported link type %d", packet.dlt);
        last_ts = packet.ts_us;
        fuzz_path_frame(packet.dlt, packet.frame, packet.caplen, packet.ts_us);
        if (packet.ts_us >= next_tick) {
            fuzz_path_tick(packet.ts_us);
            next_tick = packet.ts_us + TICK_INTERVAL_US;
        }
    }
    if (capture_next(source, &packet) != CAPTURE_END)
        fuzz_fail("capture_next went on after CAPTURE_END");
    struct capture_stats stats;
    capture_get_stats(source, &stats);
    if (stats.packets != packets)
        fuzz_fail("capture_get_stats: %llu packets, %llu handed out",
                  (unsigned long long)stats.packets, (unsigned long long)packets);
    capture_close(source);
    fuzz_path_finish(0, last_ts);
    return 0;
}
