/* decoder.h — the contract between reassembly and a protocol decoder. A decoder sees
 * only bytes, sides and times: it never touches libnids or pcap. One file per protocol
 * (smtp.c, pop3.c, imap.c) exports one const struct mt_decoder. */
#ifndef MAILTAP_DECODER_H
#define MAILTAP_DECODER_H

#include "session.h"

#include <stddef.h>
#include <stdint.h>

struct mt_decoder {
    enum mt_proto proto;
    /* Allocates per-connection state. The session outlives the state. NULL: no memory
     * (the connection is then recorded without decoding). */
    void *(*open)(struct mt_session *session);
    /* The next bytes sent by `from`, in stream order, with the capture time (µs since
     * the epoch) of the segment that completed them. Lines may be split anywhere. */
    void (*data)(void *state, struct mt_session *session, enum mt_side from,
                 const char *bytes, size_t len, int64_t ts_us);
    /* Optional (NULL: none). The streams are over: end the lines in progress now, before
     * the connection notes how it ended, so that the transcript stays in time order (a
     * decoder that stamps a line when it began: a cut FETCH line began before the reset
     * that cut it). session->end is not set yet. close() follows. */
    void (*flush)(void *state, struct mt_session *session);
    /* The connection is over (session->end says how, session->end_us when). Flush
     * pending partial lines (unless flush() did) and settle session->status /
     * status_line. */
    void (*close)(void *state, struct mt_session *session);
    void (*free)(void *state);
};

extern const struct mt_decoder smtp_decoder;
extern const struct mt_decoder pop3_decoder;
extern const struct mt_decoder imap_decoder;

/* The decoder for a protocol, or NULL when it is not built in. */
const struct mt_decoder *decoder_for(enum mt_proto proto);

#endif
