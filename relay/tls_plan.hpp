// Builds the TLS plan of one connection from the configuration: the client TLS
// context (system trust store unless ca_file/ca_path) and the level's checks.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "smtp/client_session.hpp"

namespace tlsrelay::relay {

// null with error set when the trust store or settings cannot be loaded.
std::unique_ptr<boost::asio::ssl::context> make_client_tls(const config::Config& c, std::string& error);

smtp::TlsPlan make_plan(const config::Config& c, boost::asio::ssl::context* ctx,
                        const std::string& nexthop, const smtp::ServerId& server);

}  // namespace tlsrelay::relay
