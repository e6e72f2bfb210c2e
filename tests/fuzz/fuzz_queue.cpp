// The spool's file decoders (queue/format, queue/reader) on arbitrary bytes, as a
// corrupt disk or a hostile local user could leave them. Both file kinds end in a
// SHA-256 that the fuzzer cannot forge, so besides raw files (mode 3) the harness
// completes the input into a file with correct hashes (modes 1 and 2) to reach the
// record decoders behind them. Byte 0 picks the mode; the rest is the input.
//   0: envelope records (parse_envelope)
//   1: state file records, applied to a fixed envelope (apply_state)
//   2: message file: content and envelope regions, split at byte 1 (read_message,
//      read_envelope from a memfd)
//   3: the raw bytes as a message file
// Invariants: an accepted envelope or state survives encode + decode unchanged;
// read_message and read_envelope agree; the content size matches the Z record.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "harness.hpp"
#include "queue/format.hpp"

namespace {

using tlsrelay::fuzz::require;
using namespace tlsrelay::queue;
namespace fmt = tlsrelay::queue::format;

bool same(const Envelope& a, const Envelope& b) {
    if (a.id != b.id || a.arrival_us != b.arrival_us || a.sender != b.sender || a.client != b.client ||
        a.helo != b.helo || a.smtputf8 != b.smtputf8 || a.eight_bit != b.eight_bit ||
        a.size != b.size || a.held != b.held || a.recipients.size() != b.recipients.size())
        return false;
    for (std::size_t i = 0; i < a.recipients.size(); ++i) {
        const Recipient &x = a.recipients[i], &y = b.recipients[i];
        // encode_state keeps 64 bytes of the DSN (it is "4.7.5" when we write it).
        if (x.address != y.address || x.state != y.state || x.attempts != y.attempts ||
            x.next_attempt != y.next_attempt || x.last_dsn.substr(0, 64) != y.last_dsn.substr(0, 64) ||
            x.last_reason != y.last_reason)
            return false;
    }
    return true;
}

void envelope_records(std::string_view in) {
    Envelope e;
    std::string why;
    if (!fmt::parse_envelope(in, e, why)) {
        require(!why.empty(), "a refusal says why");
        return;
    }
    std::string encoded;
    if (!fmt::encode_envelope(e, encoded, why)) return;  // fields over the write-side caps
    Envelope again;
    require(fmt::parse_envelope(encoded, again, why) && same(e, again), "envelope round trip");
}

Envelope base_envelope() {
    Envelope e;
    e.id = "4A1B2C";
    e.recipients.resize(2);
    e.recipients[0].address = "a@example.com";
    e.recipients[1].address = "b@example.org";
    return e;
}

void state_file(std::string_view in) {
    std::string file = fmt::file_header(fmt::state_magic) + std::string(in) +
                       fmt::record_header(fmt::rec::end, fmt::digest_size);
    file += fmt::as_bytes(fmt::sha256(file));
    Envelope e = base_envelope();
    if (!fmt::apply_state(file, e).ok()) return;
    Envelope again = base_envelope();
    require(fmt::apply_state(fmt::encode_state(e), again).ok() && same(e, again), "state round trip");
}

void message_file(const std::string& file) {
    int fd = ::memfd_create("fuzz_queue", MFD_CLOEXEC);
    require(fd >= 0, "memfd");
    require(::write(fd, file.data(), file.size()) == static_cast<ssize_t>(file.size()), "memfd write");
    Envelope full, cheap;
    std::string content;
    fmt::Check c = fmt::read_message(fd, full, &content);
    fmt::Check e = fmt::read_envelope(fd, cheap);
    ::close(fd);
    require(!c.io_error && !e.io_error, "no I/O errors on a memfd");
    if (!c.ok()) return;
    require(e.ok() && same(full, cheap), "read_message and read_envelope agree");
    require(content.size() == full.size, "content size matches the envelope");
}

// header, content region, envelope region, end record with both hashes.
std::string hashed_message(std::string_view in) {
    std::size_t split = in.empty() ? 0 : static_cast<unsigned char>(in[0]) * (in.size() - 1) / 255;
    if (!in.empty()) in.remove_prefix(1);
    std::string file = fmt::file_header(fmt::message_magic) + std::string(in);
    std::size_t envelope_offset = fmt::header_size + split;
    file += fmt::end_record_prefix(envelope_offset, fmt::sha256(std::string_view(file).substr(envelope_offset)));
    file += fmt::as_bytes(fmt::sha256(file));
    return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] & 3) {
        case 0: envelope_records(in); break;
        case 1: state_file(in); break;
        case 2: message_file(hashed_message(in)); break;
        case 3: message_file(std::string(in)); break;
    }
    return 0;
}
