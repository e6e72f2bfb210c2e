#include "sts/cache.hpp"

#include <charconv>

#include "sts/text.hpp"

namespace tlsrelay::sts {
namespace {

constexpr std::string_view magic = "tlsrelay-mta-sts 1";

// "NAME VALUE" at the start of text, advancing past its LF.
std::optional<std::string_view> take_line(std::string_view& text, std::string_view name) {
    auto nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (name.empty()) return line;
    if (!line.starts_with(name) || line.size() <= name.size() || line[name.size()] != ' ')
        return std::nullopt;
    return line.substr(name.size() + 1);
}

}  // namespace

std::string format_cached(const CachedPolicy& c) {
    return std::string(magic) + "\nid " + c.id + "\nfetched " + std::to_string(c.fetched) + "\n\n" +
           c.body;
}

std::optional<CachedPolicy> parse_cached(std::string_view file) {
    CachedPolicy c;
    auto head = take_line(file, "");
    auto id = take_line(file, "id");
    auto fetched = take_line(file, "fetched");
    auto blank = take_line(file, "");
    if (!head || *head != magic || !id || id->empty() || id->size() > 32 || !fetched || !blank ||
        !blank->empty())
        return std::nullopt;
    auto [end, ec] = std::from_chars(fetched->data(), fetched->data() + fetched->size(), c.fetched);
    if (ec != std::errc() || end != fetched->data() + fetched->size() || c.fetched < 0)
        return std::nullopt;
    auto parsed = parse_policy(file);
    if (!parsed.policy) return std::nullopt;
    c.id = std::string(*id);
    c.body = std::string(file);
    c.policy = std::move(*parsed.policy);
    return c;
}

Step next_step(const std::optional<CachedPolicy>& cached, const std::optional<std::string>& txt_id,
               std::int64_t now) {
    if (cached && cached->valid_at(now)) {
        if (!txt_id) return Step::use_cached;
        bool near_expiry = cached->expires() - now < cached->policy.max_age / 4;
        return *txt_id != cached->id || near_expiry ? Step::use_cached_and_refresh
                                                    : Step::use_cached;
    }
    return txt_id ? Step::fetch_now : Step::no_policy;
}

}  // namespace tlsrelay::sts
