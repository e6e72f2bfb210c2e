// The HTTPS GET of https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 section
// 3.3): our own small HTTP/1.1 client on asio::ssl (no Beast). The certificate must
// chain to the given context's trust store and name mta-sts.<domain> (RFC 6125, no
// partial wildcards); redirects are not followed; only 200 with media type text/plain
// counts; at most 64 KiB of body and one deadline for the whole fetch.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "dns/resolver.hpp"
#include "sts/http.hpp"

namespace tlsrelay::sts {

struct FetchOptions {
    unsigned short port = 443;
    std::chrono::milliseconds timeout = std::chrono::seconds(30);  // the whole fetch
    std::size_t max_body = max_policy_bytes;
    std::string user_agent = "tlsrelay";
};

struct FetchResult {
    std::optional<std::string> body;  // the policy text when the fetch succeeded
    std::string error;                // else why, e.g. "certificate verify failed"
};

// The policy host's addresses come from resolver (at most 3 are tried). ctx must have
// its trust store loaded; verification is switched on per connection.
boost::asio::awaitable<FetchResult> fetch_policy_text(dns::Resolver& resolver,
                                                      boost::asio::ssl::context& ctx,
                                                      std::string domain, FetchOptions options);

// "https://mta-sts.example.com/.well-known/mta-sts.txt"
std::string policy_url(const std::string& domain);

}  // namespace tlsrelay::sts
