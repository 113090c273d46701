/* registry.c — which decoder serves which protocol. Adding a protocol: write
 * protocols/NAME.c exporting `const struct mt_decoder NAME_decoder`, list it here. */
#include "protocols/decoder.h"

#include <stddef.h>

static const struct mt_decoder *const decoders[MT_PROTO_COUNT] = {
    [MT_PROTO_SMTP] = &smtp_decoder,
    [MT_PROTO_POP3] = &pop3_decoder,
    [MT_PROTO_IMAP] = &imap_decoder,
};

const struct mt_decoder *decoder_for(enum mt_proto proto)
{
    if ((int)proto < 0 || proto >= MT_PROTO_COUNT)
        return NULL;
    return decoders[proto];
}
