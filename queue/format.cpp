#include "queue/format.hpp"

#include <openssl/evp.h>

#include <new>

namespace tlsrelay::queue::format {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_le(std::string_view bytes) {
    std::uint64_t v = 0;
    for (std::size_t i = bytes.size(); i-- > 0;)
        v = (v << 8) | static_cast<unsigned char>(bytes[i]);
    return v;
}

// Reads fields out of one record's payload.
struct Cursor {
    std::string_view rest;

    bool take(std::size_t n, std::string_view& out) {
        if (rest.size() < n) return false;
        out = rest.substr(0, n);
        rest.remove_prefix(n);
        return true;
    }
    bool number(std::size_t n, std::uint64_t& out) {
        std::string_view bytes;
        if (!take(n, bytes)) return false;
        out = get_le(bytes);
        return true;
    }
    bool counted(std::string_view& out) {
        std::uint64_t n = 0;
        return number(4, n) && take(n, out);
    }
};

// Splits the next record off `region`.
bool next_record(std::string_view& region, char& type, std::string_view& payload,
                 std::string& why) {
    if (region.size() < record_header_size) {
        why = "truncated record header";
        return false;
    }
    type = region[0];
    std::uint64_t length = get_le(region.substr(1, 4));
    region.remove_prefix(record_header_size);
    if (length > max_field || length > region.size()) {
        why = "bad record length";
        return false;
    }
    payload = region.substr(0, length);
    region.remove_prefix(length);
    return true;
}

bool once(unsigned& seen, unsigned bit, std::string& why) {
    if (seen & bit) {
        why = "duplicate envelope record";
        return false;
    }
    seen |= bit;
    return true;
}

constexpr unsigned all_singletons = 0x7f;
constexpr unsigned flag_smtputf8 = 1, flag_eight_bit = 2, flag_held = 4;

bool number_record(std::string_view payload, std::uint64_t& out, std::string& why) {
    if (payload.size() != 8) {
        why = "bad number record";
        return false;
    }
    out = get_le(payload);
    return true;
}

bool flags_record(std::string_view payload, Envelope& e, std::string& why) {
    if (payload.size() != 1 || (payload[0] & ~0x07) != 0) {
        why = "bad flags record";
        return false;
    }
    e.smtputf8 = payload[0] & flag_smtputf8;
    e.eight_bit = payload[0] & flag_eight_bit;
    e.held = payload[0] & flag_held;
    return true;
}

bool apply_envelope_record(char type, std::string_view payload, Envelope& e, unsigned& seen,
                           std::string& why) {
    std::uint64_t n = 0;
    switch (type) {
    case rec::id: e.id = payload; return once(seen, 1, why);
    case rec::sender: e.sender = payload; return once(seen, 2, why);
    case rec::client: e.client = payload; return once(seen, 4, why);
    case rec::helo: e.helo = payload; return once(seen, 8, why);
    case rec::flags: return flags_record(payload, e, why) && once(seen, 16, why);
    case rec::arrival:
        if (!number_record(payload, n, why)) return false;
        e.arrival_us = static_cast<std::int64_t>(n);
        return once(seen, 32, why);
    case rec::size:
        if (!number_record(payload, n, why)) return false;
        e.size = n;
        return once(seen, 64, why);
    case rec::recipient:
        e.recipients.emplace_back().address = payload;
        return true;
    default: why = "unexpected record type in envelope"; return false;
    }
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(std::string_view bytes) {
    if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) throw std::bad_alloc();
}

Digest Sha256::finish() {
    Digest d{};
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_, d.data(), &n) != 1 || n != d.size()) throw std::bad_alloc();
    return d;
}

Digest sha256(std::string_view bytes) {
    Sha256 sha;
    sha.update(bytes);
    return sha.finish();
}

std::string_view as_bytes(const Digest& digest) {
    return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

std::string file_header(std::string_view magic) {
    std::string out(magic);
    put_u32(out, version);
    return out;
}

std::string record_header(char type, std::uint32_t length) {
    std::string out(1, type);
    put_u32(out, length);
    return out;
}

void append_record(std::string& out, char type, std::string_view payload) {
    out += record_header(type, static_cast<std::uint32_t>(payload.size()));
    out += payload;
}

bool encode_envelope(const Envelope& e, std::string& out, std::string& why) {
    for (const std::string* field : {&e.id, &e.client, &e.helo}) {
        if (field->size() > max_field) why = "envelope field too long";
    }
    if (e.sender.size() > max_address) why = "sender address too long";
    for (const auto& r : e.recipients) {
        if (r.address.size() > max_address) why = "recipient address too long";
    }
    if (!why.empty()) return false;
    std::string number;
    append_record(out, rec::id, e.id);
    put_u64(number, static_cast<std::uint64_t>(e.arrival_us));
    append_record(out, rec::arrival, number);
    char flags = static_cast<char>((e.smtputf8 ? flag_smtputf8 : 0) |
                                   (e.eight_bit ? flag_eight_bit : 0) | (e.held ? flag_held : 0));
    append_record(out, rec::flags, std::string_view(&flags, 1));
    number.clear();
    put_u64(number, e.size);
    append_record(out, rec::size, number);
    append_record(out, rec::sender, e.sender);
    append_record(out, rec::client, e.client);
    append_record(out, rec::helo, e.helo);
    for (const auto& r : e.recipients) append_record(out, rec::recipient, r.address);
    return true;
}

std::string end_record_prefix(std::uint64_t envelope_offset, const Digest& envelope_hash) {
    std::string out = record_header(rec::end, 8 + 2 * digest_size);
    put_u64(out, envelope_offset);
    out += as_bytes(envelope_hash);
    return out;
}

bool parse_envelope(std::string_view records, Envelope& out, std::string& why) {
    Envelope e;
    unsigned seen = 0;
    while (!records.empty()) {
        char type = 0;
        std::string_view payload;
        if (!next_record(records, type, payload, why)) return false;
        if (!apply_envelope_record(type, payload, e, seen, why)) return false;
    }
    if (seen != all_singletons || e.recipients.empty()) {
        why = "incomplete envelope";
        return false;
    }
    out = std::move(e);
    return true;
}

// ---- state files ----

namespace {

void encode_recipient_state(const Recipient& r, std::string& out) {
    std::string p(1, static_cast<char>(r.state));
    put_u32(p, r.attempts);
    put_u64(p, static_cast<std::uint64_t>(r.next_attempt));
    // Addresses are at most max_address (checked at commit), so this stays in max_field.
    std::string_view dsn = std::string_view(r.last_dsn).substr(0, 64);
    for (std::string_view s : {std::string_view(r.address), dsn}) {
        put_u32(p, static_cast<std::uint32_t>(s.size()));
        p += s;
    }
    p += std::string_view(r.last_reason).substr(0, max_field - p.size());
    append_record(out, rec::recipient, p);
}

bool parse_recipient_state(std::string_view payload, const Recipient& expected, Recipient& r) {
    Cursor c{payload};
    std::uint64_t state = 0, attempts = 0, next = 0;
    std::string_view address, dsn;
    if (!c.number(1, state) || state > 3 || !c.number(4, attempts) || !c.number(8, next) ||
        !c.counted(address) || !c.counted(dsn) || address != expected.address)
        return false;
    r = Recipient{std::string(address), static_cast<RecipientState>(state),
                  static_cast<std::uint32_t>(attempts), static_cast<std::int64_t>(next),
                  std::string(dsn), std::string(c.rest)};
    return true;
}

Check state_records(std::string_view records, Envelope& e) {
    std::vector<Recipient> recipients;
    unsigned seen = 0;
    bool held = false;
    std::string why;
    while (!records.empty()) {
        char type = 0;
        std::string_view p;
        if (!next_record(records, type, p, why)) return {why};
        if (type == rec::id && p == e.id && once(seen, 1, why)) continue;
        if (type == rec::held && p.size() == 1 && (p[0] & ~1) == 0 && once(seen, 2, why)) {
            held = p[0] != 0;
            continue;
        }
        std::size_t i = recipients.size();
        if (type != rec::recipient || i >= e.recipients.size() ||
            !parse_recipient_state(p, e.recipients[i], recipients.emplace_back()))
            return {"unexpected or mismatched record"};
    }
    if (seen != 3 || recipients.size() != e.recipients.size()) return {"incomplete state"};
    e.recipients = std::move(recipients);
    e.held = held;
    return {};
}

}  // namespace

std::string encode_state(const Envelope& e) {
    std::string out = file_header(state_magic);
    append_record(out, rec::id, e.id);
    char held = e.held ? 1 : 0;
    append_record(out, rec::held, std::string_view(&held, 1));
    for (const auto& r : e.recipients) encode_recipient_state(r, out);
    out += record_header(rec::end, digest_size);
    out += as_bytes(sha256(out));
    return out;
}

Check apply_state(std::string_view file, Envelope& e) {
    constexpr std::size_t end_size = record_header_size + digest_size;
    if (file.size() < header_size + end_size) return {"too short"};
    if (file.substr(0, header_size) != file_header(state_magic)) return {"bad header"};
    if (file.substr(file.size() - digest_size) != as_bytes(sha256(file.substr(0, file.size() - digest_size))))
        return {"checksum mismatch"};
    std::string_view end = file.substr(file.size() - end_size, record_header_size);
    if (end != record_header(rec::end, digest_size)) return {"missing end record"};
    return state_records(file.substr(header_size, file.size() - header_size - end_size), e);
}

}  // namespace tlsrelay::queue::format
