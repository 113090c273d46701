/* fuzz_decoder.c — one decoder fed a fuzzed, interleaved client/server byte sequence. */
#include "fuzz_decoder.h"

#include "fuzz_check.h"
#include "protocols/tlsfollow.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_START_US 1767225600000000LL   /* 2026-01-01T00:00:00Z */

int fuzz_decoder_run(const struct mt_decoder *decoder, const uint8_t *data, size_t size)
{
    struct mt_session *session = session_new(decoder->proto);
    if (!session)
        return 0;
    /* The two streams as the decoder sees them, for the password rule. */
    uint8_t *streams = malloc(size * 2 + 1);
    if (!streams) {
        session_free(session);
        return 0;
    }
    uint8_t *client = streams, *server = streams + size;
    size_t client_len = 0, server_len = 0;

    strcpy(session->client_ip, "192.0.2.1");
    strcpy(session->server_ip, "198.51.100.25");
    session->client_port = 40000;
    static const uint16_t ports[MT_PROTO_COUNT] = { 25, 110, 143 };
    session->server_port = ports[decoder->proto];
    session->start_us = session->end_us = FUZZ_START_US;
    void *state = decoder->open(session);
    if (!state)
        fuzz_fail("open() returned NULL");
    /* The TLS follower runs beside the decoder, as in cli/pipeline.c. */
    struct tls_follow *tls = tls_follow_new();

    int64_t now = FUZZ_START_US;
    size_t pos = 0;
    struct fuzz_chunk chunk;
    while (fuzz_next_chunk(data, size, &pos, &chunk)) {
        now += chunk.delta_us;
        if (chunk.len == 0)
            continue;
        if (chunk.side == MT_CLIENT) {
            memcpy(client + client_len, chunk.bytes, chunk.len);
            client_len += chunk.len;
            session->bytes_c2s += chunk.len;
        } else {
            memcpy(server + server_len, chunk.bytes, chunk.len);
            server_len += chunk.len;
            session->bytes_s2c += chunk.len;
        }
        session->end_us = now;
        decoder->data(state, session, (enum mt_side)chunk.side, (const char *)chunk.bytes,
                      chunk.len, now);
        if (tls)
            tls_follow_data(tls, session, (enum mt_side)chunk.side, (const char *)chunk.bytes,
                            chunk.len, now);
    }
    /* How the connection ended: from the input size, so every ending gets exercised. */
    session->end = (enum mt_end)(size % (MT_END_EOF + 1));
    decoder->close(state, session);
    decoder->free(state);
    tls_follow_settle(tls, session);
    tls_follow_free(tls);

    fuzz_check_session(session, decoder->proto);
    if (fuzz_secret_expected_hidden(decoder->proto, client, client_len, server, server_len))
        fuzz_check_no_secret(session);
    session_free(session);
    free(streams);
    return 0;
}
