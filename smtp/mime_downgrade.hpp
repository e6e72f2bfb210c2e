// 8-bit MIME content on the way out, as Postfix 3.7 handles it: which messages declare
// 8-bit content (cleanup_message.c, auto_8bit_encoding_header), and the conversion to
// quoted-printable for a server that does not offer 8BITMIME (RFC 6152; mime_state.c
// with MIME_OPT_DOWNGRADE). Pure functions over the stored form (CRLF lines).
#pragma once

#include <string>
#include <string_view>

namespace tlsrelay::smtp {

// A Content-Transfer-Encoding of 8bit or binary in any header block (the message's,
// a body part's or an attached message's): Postfix then marks the message 8-bit, as
// if the client had said BODY=8BITMIME.
bool declares_8bit(std::string_view content);

// Every part that declares 8bit or binary becomes quoted-printable: its encoding
// header is dropped and "Content-Transfer-Encoding: quoted-printable" ends its header
// block ("7bit" for a multipart or message/rfc822 one), and its body lines are
// encoded with soft breaks after 73 octets and trailing blanks made visible. Other
// parts, and 8-bit data without such a declaration, pass unchanged.
std::string downgrade_8bit(std::string_view content);

}  // namespace tlsrelay::smtp
