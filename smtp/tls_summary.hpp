// The protocol/cipher part of Postfix's "... TLS connection established to ..." line
// (src/tls/tls_misc.c tls_log_summary), read from a finished OpenSSL session.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace tlsrelay::smtp {

// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519
//  server-signature RSA-PSS (2048 bits) server-digest SHA256"
std::string describe_tls_session(SSL* ssl);

// Anonymous when the peer sent no certificate; Trusted when OpenSSL's chain check
// passed; Untrusted otherwise (levels that check nothing more: may, encrypt).
std::string default_adjective(SSL* ssl);

}  // namespace tlsrelay::smtp
