#include "config/policy_file.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tls/protocols.hpp"
#include "tls/text.hpp"

namespace tlsrelay::config {
namespace {

constexpr std::string_view blanks = " \t\r\n\v\f";

bool is_blank(char c) { return blanks.find(c) != std::string_view::npos; }

struct LogicalLine {
    std::string text;
    int line = 0;
    bool starts_with_blank = false;
};

void add_entry(const LogicalLine& l, const std::string& file, PolicyTableResult& out) {
    auto report = [&](std::string message) { out.problems.push_back({file, l.line, std::move(message)}); };
    if (l.starts_with_blank)
        return report("logical line must not start with whitespace: \"" + l.text + "\"");
    std::string_view text = l.text;
    text = text.substr(0, text.find_last_not_of(blanks) + 1);
    size_t key_end = text.find_first_of(blanks);
    if (key_end == std::string_view::npos)
        return report("expected format: key whitespace value -- ignoring this line");
    tls::TableEntry entry;
    entry.key = tls::lower(text.substr(0, key_end));
    entry.value = std::string(text.substr(text.find_first_not_of(blanks, key_end)));
    entry.tokens = tls::tokenize_policy_value(entry.value);
    entry.file = file;
    entry.line = l.line;
    std::string key = entry.key;
    if (const tls::TableEntry* first = out.table.add(std::move(entry))) {
        // Postfix's texthash (dict_thash.c) then refuses the whole file: every lookup
        // fails and all mail that consults the table is deferred.
        report("duplicate entry: \"" + key + "\" (first at line " + std::to_string(first->line) +
               "): the whole table is unusable, all mail is deferred (client TLS configuration problem)");
        if (out.table.unavailable().empty())
            out.table.set_unavailable(file + ", line " + std::to_string(l.line) + ": duplicate entry: \"" + key + "\"");
    }
}

}  // namespace

void parse_policy_text(std::string_view text, const std::string& file, PolicyTableResult& out) {
    std::optional<LogicalLine> current;
    int number = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++number;
        size_t first = line.find_first_not_of(blanks);
        if (first == std::string_view::npos || line[first] == '#') continue;
        if (is_blank(line[0]) && current) {
            current->text += line;  // the newline goes, the indentation stays
            continue;
        }
        if (current) add_entry(*current, file, out);
        current = LogicalLine{std::string(line), number, is_blank(line[0])};
    }
    if (current) add_entry(*current, file, out);
}

PolicyTableResult parse_policy_text(std::string_view text, const std::string& file) {
    PolicyTableResult out;
    parse_policy_text(text, file, out);
    return out;
}

PolicyTableResult load_policy_file(const std::filesystem::path& file) {
    PolicyTableResult out;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        out.problems.push_back({file.string(), 0, "cannot open policy file: " + std::string(std::strerror(errno))});
        return out;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    parse_policy_text(buf.str(), file.string(), out);
    return out;
}

PolicyTableResult build_policy_table(const TlsConfig& tls) {
    PolicyTableResult out;
    if (!tls.policy_file.empty()) out = load_policy_file(tls.policy_file);
    for (const auto& entry : tls.policy) {
        tls::TableEntry e = tls::to_table_entry(entry);
        std::string key = e.key;
        if (const tls::TableEntry* first = out.table.add(std::move(e)))
            out.problems.push_back({entry.file, entry.line,
                                    "duplicate entry: \"" + key + "\"; the entry at " + first->file + ":" +
                                        std::to_string(first->line) + " is used"});
    }
    return out;
}

tls::MainSettings main_settings(const TlsConfig& tls, bool dnssec) {
    tls::MainSettings m;
    m.level = tls::parse_level(tls.security_level).value_or(tls::Level::may);
    m.verify_cert_match = tls.verify_cert_match;
    m.secure_cert_match = tls.secure_cert_match;
    m.fingerprint_cert_match = tls.fingerprint_cert_match;
    m.fingerprint_digest = tls.fingerprint_digest;
    m.protocols = tls.protocols;
    m.mandatory_protocols = tls.mandatory_protocols;
    m.mandatory_ciphers = tls.mandatory_ciphers;
    m.exclude_ciphers = tls.exclude_ciphers;
    m.servername = tls.servername;
    m.dnssec = dnssec;
    return m;
}

std::optional<std::string> check_trust_anchor_file(const std::string& file) {
    errno = 0;
    BIO* bio = BIO_new_file(file.c_str(), "r");
    if (!bio)
        return "error opening trust anchor file: " + file + ": " + std::strerror(errno ? errno : ENOENT);
    int anchors = 0;
    char *name = nullptr, *header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    while (PEM_read_bio(bio, &name, &header, &data, &len)) {
        if (!std::strcmp(name, PEM_STRING_X509) || !std::strcmp(name, PEM_STRING_X509_OLD) ||
            !std::strcmp(name, PEM_STRING_PUBLIC))
            ++anchors;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (anchors == 0) return "trust anchor file " + file + " holds no PEM certificate or public key";
    return std::nullopt;
}

namespace {

bool has_attribute(const tls::TableEntry& e, std::string_view name) {
    for (size_t i = 1; i < e.tokens.size(); ++i)
        if (tls::istarts_with(e.tokens[i], std::string(name) + "=")) return true;
    return false;
}

// Problems Postfix finds only at connect or handshake time.
std::vector<std::string> late_problems(const tls::Policy& p, bool protocols, bool ciphers) {
    std::vector<std::string> out;
    if (p.invalid || p.level == tls::Level::none) return out;
    if (protocols) {
        auto r = tls::parse_protocols(p.protocols);
        if (!r.range)
            out.push_back(r.error + " (every handshake would fail)");
        else if (r.range->empty)
            out.push_back("protocols \"" + p.protocols + "\" leave no TLS version enabled");
    }
    if (ciphers) {
        if (auto c = tls::cipher_list(p.ciphers, p.exclude); !c.cipher_list)
            out.push_back(c.error + " (every handshake would fail)");
    }
    if (p.level == tls::Level::fingerprint) {
        for (const auto& fp : p.fingerprints)
            if (auto why = tls::fingerprint_length_problem(fp, p.digest); !why.empty())
                out.push_back("fingerprint " + fp.text + ": " + why);
    }
    return out;
}

void report_global(const tls::MainSettings& main, const std::string& file, std::vector<Problem>& out) {
    auto add = [&](const std::string& m) {
        for (const auto& seen : out)
            if (seen.message == m) return;
        out.push_back({file, 0, m});
    };
    tls::Policy p = tls::evaluate_policy({}, "(default)", main, check_trust_anchor_file);
    for (const auto& w : p.warnings) add(w);
    for (auto mandatory : {false, true}) {
        tls::MainSettings m = main;
        m.level = mandatory ? tls::Level::encrypt : tls::Level::may;
        m.fingerprint_cert_match.clear();
        for (const auto& w : late_problems(tls::evaluate_policy({}, "(default)", m), true, true)) add(w);
    }
}

}  // namespace

std::vector<Problem> check_policies(const tls::PolicyTable& table, const tls::MainSettings& main,
                                    const std::string& config_file) {
    std::vector<Problem> out;
    report_global(main, config_file, out);
    for (const auto& e : table.entries()) {
        tls::LookupResult hit{&e, e.key, {e.key}, {}};
        tls::Policy p = tls::evaluate_policy(hit, e.key, main, check_trust_anchor_file);
        for (const auto& w : p.warnings) out.push_back({e.file, e.line, w});
        bool ciphers = has_attribute(e, "ciphers") || has_attribute(e, "exclude");
        for (const auto& m : late_problems(p, has_attribute(e, "protocols"), ciphers))
            out.push_back({e.file, e.line, m});
    }
    return out;
}

}  // namespace tlsrelay::config
