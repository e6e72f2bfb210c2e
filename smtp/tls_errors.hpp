// OpenSSL's error queue at the end of a failed SSL_connect, as Postfix logs it: the
// "SSL_connect error to HOST: -1" line is followed by one "warning: TLS library
// problem: error:...:FILE:LINE:" line per queued error (src/tls/tls_misc.c
// tls_print_errors). Asio keeps only the first error's code and drops the file, line
// and data, so they are read here, from the SSL object's info callback.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace tlsrelay::smtp {

class TlsErrors {
public:
    // From now on, each return of SSL_connect with queued errors is recorded here
    // (this object must outlive the handshake on ssl).
    void watch(SSL* ssl);

    bool empty() const { return problems_.empty(); }
    int connect_result() const { return result_; }  // what SSL_connect returned then
    // "error:0A000410:SSL routines::sslv3 alert handshake failure:../ssl/record/
    // rec_layer_s3.c:1584:SSL alert number 40:", one per queued error, oldest first.
    const std::vector<std::string>& problems() const { return problems_; }

private:
    static void on_info(const SSL* ssl, int where, int ret);

    int result_ = 0;
    std::vector<std::string> problems_;
};

}  // namespace tlsrelay::smtp
