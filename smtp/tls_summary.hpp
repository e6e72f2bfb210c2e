// The protocol/cipher part of Postfix's "... TLS connection established to ..." line
// (src/tls/tls_misc.c tls_log_summary), read from a finished OpenSSL session.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace tlsrelay::smtp {

// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519
//  server-signature RSA-PSS (2048 bits) server-digest SHA256"; for TLS 1.2 and older
// only "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)", as Postfix 3.7,
// unless every_version (`tlsrelay probe`: the key exchange and signature of any session).
std::string describe_tls_session(SSL* ssl, bool every_version = false);

// Anonymous when the peer sent no certificate; Trusted when OpenSSL's chain check
// passed; Untrusted otherwise (levels that check nothing more: may, encrypt).
std::string default_adjective(SSL* ssl);

}  // namespace tlsrelay::smtp
