// The TOML configuration loader (config/config) on arbitrary text: toml++'s parser
// and our key/type/value checks. Contract: every problem is reported as a value
// naming the source and a line, no exception escapes, and paths in an accepted file
// resolve against its folder.
// Also the duration and size parsers on the raw bytes.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "harness.hpp"
#include "config/config.hpp"

namespace {

using tlsrelay::fuzz::require;
using namespace tlsrelay;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    config::LoadResult r = config::load_string(text, "fuzz.toml", "/var/tmp/tlsrelay-fuzz");
    for (const auto& p : r.problems) {
        require(p.file == "fuzz.toml" && p.line >= 0 && !p.message.empty(), "a problem names the source");
        require(p.to_string().rfind("fuzz.toml:", 0) == 0, "FILE:LINE: message");
    }
    if (r.ok()) require(r.config.queue.dir.is_absolute(), "relative paths resolve against the base folder");
    if (auto d = config::parse_duration(text)) require(d->count() >= 0, "durations are not negative");
    (void)config::parse_size(text);
    return 0;
}
