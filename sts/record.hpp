// The "_mta-sts.<domain>" TXT record of RFC 8461 section 3.1 ("v=STSv1; id=...;"):
// which of a domain's TXT records is its MTA-STS record, and its policy id. Pure:
// strings in, values out; anything off the grammar means "no MTA-STS record".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::sts {

struct TxtRecord {
    std::string id;  // 1 to 32 letters and digits; a new id means a new policy
};

// One record's text, as the ABNF reads it: "v=STSv1" first, fields separated by
// *WSP ";" *WSP, exactly one id=, extensions name=value; case-sensitive.
std::optional<TxtRecord> parse_txt_record(std::string_view text);

// Section 3.1: records not starting with "v=STSv1" are discarded; unless exactly one
// remains and it is valid, the domain has no usable record. problem says why (for
// logs and probe) when record is empty and some record was seen.
struct RecordChoice {
    std::optional<TxtRecord> record;
    std::string problem;
};
RecordChoice choose_txt_record(const std::vector<std::string>& records);

}  // namespace tlsrelay::sts
