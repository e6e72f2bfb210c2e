// gzip (RFC 1952) compression of a TLS-RPT report, for its application/tlsrpt+gzip
// attachment (RFC 8460 section 5.3), with zlib.
#pragma once

#include <string>
#include <string_view>

namespace tlsrelay::sts {

// The gzip member of data; throws std::runtime_error only when zlib itself fails.
std::string gzip(std::string_view data);

}  // namespace tlsrelay::sts
