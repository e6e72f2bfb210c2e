// The "_smtp._tls.<domain>" TXT record of RFC 8460 section 3 ("v=TLSRPTv1; rua=..."):
// which of a domain's TXT records is its TLS-RPT record and where reports go. Pure:
// strings in, values out; anything off the grammar means "no TLS-RPT record".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::sts {

struct RptRecord {
    std::vector<std::string> mailto;  // report addresses (rua=mailto:), percent-decoded
    std::vector<std::string> https;   // rua=https: URIs (not delivered, only shown)
};

// At most this many rua URIs are taken from a record; the rest are ignored, so a
// hostile record cannot make one report into a mail flood.
inline constexpr std::size_t max_rua = 10;

// One record's text: "v=TLSRPTv1" first, fields separated by *WSP ";" *WSP, an optional
// trailing ";", exactly one rua= with URIs separated by *WSP "," *WSP, extensions
// name=value. Case-sensitive as the ABNF. URIs other than mailto: and https: are
// ignored; a record without a usable URI is no record.
std::optional<RptRecord> parse_rpt_record(std::string_view text);

// Section 3: records not starting with "v=TLSRPTv1;" are discarded; unless exactly one
// remains and it is valid, the domain does not implement TLS-RPT. problem says why
// when record is empty and some record was seen.
struct RptRecordChoice {
    std::optional<RptRecord> record;
    std::string problem;
};
RptRecordChoice choose_rpt_record(const std::vector<std::string>& records);

// "mailto:a@example.com, https://r.example.com/x", for probe and logs.
std::string describe(const RptRecord& record);

}  // namespace tlsrelay::sts
