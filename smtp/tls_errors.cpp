#include "smtp/tls_errors.hpp"

#include <openssl/err.h>

namespace tlsrelay::smtp {
namespace {

int errors_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

}  // namespace

void TlsErrors::watch(SSL* ssl) {
    SSL_set_ex_data(ssl, errors_index(), this);
    SSL_set_info_callback(ssl, &TlsErrors::on_info);
}

// Called as SSL_connect returns (SSL_CB_CONNECT_EXIT), before Asio takes the first
// error: the queue is read whole and put back as it was, so Asio's error code stays.
void TlsErrors::on_info(const SSL* ssl, int where, int ret) {
    if ((where & SSL_CB_CONNECT_EXIT) != SSL_CB_CONNECT_EXIT || ret > 0 || ERR_peek_error() == 0) return;
    auto* self = static_cast<TlsErrors*>(SSL_get_ex_data(ssl, errors_index()));
    if (!self) return;
    struct Queued {
        unsigned long code;
        std::string file;  // copies: the queue's slots own theirs and are reused below
        int line;
        std::string func;
        std::string data;
        bool has_data;
    };
    std::vector<Queued> queue;
    const char *file = nullptr, *func = nullptr, *data = nullptr;
    int line = 0, flags = 0;
    while (unsigned long code = ERR_get_error_all(&file, &line, &func, &data, &flags))
        queue.push_back({code, file ? file : "", line, func ? func : "", data ? data : "",
                         (flags & ERR_TXT_STRING) != 0});
    self->result_ = ret;
    self->problems_.clear();
    for (const auto& q : queue) {
        char text[1024];
        ERR_error_string_n(q.code, text, sizeof text);
        std::string problem = std::string(text) + ":" + q.file + ":" + std::to_string(q.line) + ":";
        if (q.has_data) problem += q.data + ":";
        self->problems_.push_back(std::move(problem));
        ERR_new();
        ERR_set_debug(q.file.c_str(), q.line, q.func.c_str());  // OpenSSL 3 copies both
        if (q.has_data)
            ERR_set_error(ERR_GET_LIB(q.code), ERR_GET_REASON(q.code), "%s", q.data.c_str());
        else
            ERR_set_error(ERR_GET_LIB(q.code), ERR_GET_REASON(q.code), nullptr);
    }
}

}  // namespace tlsrelay::smtp
