// TlsErrors against a real handshake in memory: a server that only speaks TLS 1.3
// refuses a client limited to TLS 1.2 with an alert, and the client's failed
// SSL_connect leaves OpenSSL's queue as Postfix logs it (tls_print_errors).
#include "smtp/tls_errors.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <regex>

#include "tests/tls/test_certs.hpp"

namespace tlsrelay::smtp {
namespace {

struct Handshake {
    SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
    SSL* server = nullptr;
    SSL* client = nullptr;

    Handshake() {
        auto cert = tls::test::make_cert({{"mx.example.test"}, {}, {"mx.example.test"}});
        SSL_CTX_use_certificate(server_ctx, cert.get());
        SSL_CTX_use_PrivateKey(server_ctx, tls::test::test_key());
        server = SSL_new(server_ctx);
        client = SSL_new(client_ctx);
        BIO *client_end = nullptr, *server_end = nullptr;
        BIO_new_bio_pair(&client_end, 0, &server_end, 0);
        SSL_set_bio(client, client_end, client_end);
        SSL_set_bio(server, server_end, server_end);
    }
    ~Handshake() {
        SSL_free(client);
        SSL_free(server);
        SSL_CTX_free(client_ctx);
        SSL_CTX_free(server_ctx);
    }
    // Both sides in turn, as Asio drives the client, until the client is done.
    int run() {
        int rc = 0;
        for (int turn = 0; turn < 10; ++turn) {
            ERR_clear_error();
            rc = SSL_connect(client);
            if (rc > 0 || SSL_get_error(client, rc) != SSL_ERROR_WANT_READ) return rc;
            ERR_clear_error();
            SSL_accept(server);
        }
        return rc;
    }
};

TEST(TlsErrors, KeepsTheFailedConnectsQueueWithFileLineAndData) {
    Handshake h;
    SSL_set_min_proto_version(h.server, TLS1_3_VERSION);
    SSL_set_max_proto_version(h.client, TLS1_2_VERSION);
    TlsErrors errors;
    errors.watch(h.client);
    int rc = h.run();
    ASSERT_LE(rc, 0);
    ASSERT_EQ(SSL_get_error(h.client, rc), SSL_ERROR_SSL);
    ASSERT_EQ(errors.problems().size(), 1u);
    // The queue was put back whole: Asio still reads the first error's code, and its
    // file, line and data are OpenSSL's own copies (read here after the callback's are gone).
    const char *file = nullptr, *func = nullptr, *data = nullptr;
    int line = 0, flags = 0;
    unsigned long first = ERR_get_error_all(&file, &line, &func, &data, &flags);
    EXPECT_EQ(ERR_GET_REASON(first), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    ASSERT_NE(file, nullptr);
    EXPECT_NE(errors.problems()[0].find(std::string(file) + ":" + std::to_string(line) + ":"), std::string::npos);
    EXPECT_TRUE(flags & ERR_TXT_STRING);
    EXPECT_STREQ(data, "SSL alert number 70");
    EXPECT_EQ(ERR_get_error(), 0u);
    EXPECT_EQ(errors.connect_result(), rc);
    EXPECT_TRUE(std::regex_match(errors.problems()[0],
                                 std::regex("error:[0-9A-F]{8}:SSL routines::tlsv1 alert protocol version:"
                                            "[^:]+\\.c:[0-9]+:SSL alert number 70:")))
        << errors.problems()[0];
}

TEST(TlsErrors, AHandshakeThatSucceedsLeavesNothing) {
    Handshake h;
    TlsErrors errors;
    errors.watch(h.client);
    EXPECT_EQ(h.run(), 1);
    EXPECT_TRUE(errors.empty());
}

}  // namespace
}  // namespace tlsrelay::smtp
