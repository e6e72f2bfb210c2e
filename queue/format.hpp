// The on-disk format of spool files. Like Postfix queue files (src/global/rec_type.h),
// everything is a typed, length-prefixed record, so no byte of client data (CR, LF,
// NUL) can re-frame anything, and a file is only valid with its END record and checksum.
//
// All integers are little-endian. A record is: type (1 byte), length (u32), payload.
//
// Message file, messages/<ID> (immutable once renamed into place):
//   header    "TLSRQMSG" u32 version (1)                                     12 bytes
//   content   'C' records, payload = the next <= 64 KiB of content (none for 0 bytes)
//   envelope  'I' queue id   'A' i64 arrival (unix us)   'F' u8 flags (1 SMTPUTF8,
//             2 8BITMIME, 4 held at arrival)   'Z' u64 content size   'S' sender
//             'L' client   'H' helo   'R' one per recipient, in RCPT order
//   end       'E' u32 72, u64 envelope offset, SHA-256 of the envelope records,
//             SHA-256 of every byte of the file before this last hash       77 bytes
// The end record is the fixed-size last 77 bytes of the file, so the envelope is read
// without touching the content (its own hash guards it); the whole-file hash is checked
// at start-up recovery and whenever the content is loaded. Truncation, a missing end,
// bit flips and garbage all fail one of: sizes, record framing, unknown or missing
// records, a hash.
//
// State file, state/<ID> (mutable delivery state; absent = every recipient pending):
//   header    "TLSRQSTA" u32 version (1)
//   records   'I' queue id   'D' u8 held   'R' per recipient, in order: u8 state,
//             u32 attempts, i64 next attempt, u32 n + address, u32 n + last DSN,
//             last reason (rest of the payload)
//   end       'E' u32 32, SHA-256 of every byte before it
// A state file that fails any check, or names other recipients, is ignored (logged):
// the message starts over from its envelope, so mail may be sent twice, never lost.
//
// Commit rule (queue/draft.cpp): write an anonymous file made in tmp/ (O_TMPFILE) or
// tmp/<ID>, fsync it, link or rename it to messages/<ID> refusing to replace (linkat
// through /proc/self/fd; RENAME_NOREPLACE, or link()), close it (checked), fsync
// messages/; only then may the server answer 250. State files: write state/<ID>.tmp, close, rename
// over state/<ID> (a hold: fsync both); a message's first state goes to state/<ID> at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "queue/queue.hpp"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace tlsrelay::queue::format {

inline constexpr std::uint32_t version = 1;
inline constexpr std::string_view message_magic = "TLSRQMSG";
inline constexpr std::string_view state_magic = "TLSRQSTA";
inline constexpr std::size_t header_size = 12;
inline constexpr std::size_t record_header_size = 5;
inline constexpr std::size_t digest_size = 32;
inline constexpr std::size_t footer_size = record_header_size + 8 + 2 * digest_size;
inline constexpr std::size_t chunk_size = 64 * 1024;   // content bytes per 'C' record
inline constexpr std::size_t max_field = 64 * 1024;    // any other record's payload
inline constexpr std::size_t max_address = 4096;       // sender, each recipient
inline constexpr std::uint64_t max_envelope = 64ull << 20;

namespace rec {
inline constexpr char content = 'C', id = 'I', arrival = 'A', flags = 'F', size = 'Z',
                      sender = 'S', client = 'L', helo = 'H', recipient = 'R',
                      held = 'D', end = 'E';
}

using Digest = std::array<unsigned char, digest_size>;

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(std::string_view bytes);
    Digest finish();

private:
    EVP_MD_CTX* ctx_;
};

Digest sha256(std::string_view bytes);
std::string_view as_bytes(const Digest& digest);

std::string file_header(std::string_view magic);
std::string record_header(char type, std::uint32_t length);
void append_record(std::string& out, char type, std::string_view payload);

// The envelope records of a message. False (why set) when a field exceeds max_field.
bool encode_envelope(const Envelope& envelope, std::string& out, std::string& why);
// The end record without its final 32 bytes (the hash of everything before them).
std::string end_record_prefix(std::uint64_t envelope_offset, const Digest& envelope_hash);
// Parses envelope records (singletons once each, at least one recipient).
bool parse_envelope(std::string_view records, Envelope& out, std::string& why);

// Result of reading a file: empty why = valid. io_error: the file could not be read
// (it may be fine), as opposed to read and found invalid.
struct Check {
    std::string why;
    bool io_error = false;
    bool ok() const { return why.empty(); }
};

// Full validation of an open message file: every record and both hashes. Appends the
// content to *content unless it is null.
Check read_message(int fd, Envelope& envelope, std::string* content);
// Cheap read: end record, header and envelope (with its hash); the content is not read
// (a file of at most chunk_size bytes is read whole, in one call).
Check read_envelope(int fd, Envelope& envelope);
// The same for a file whose size the caller has just taken (fstat).
Check read_message(int fd, std::uint64_t size, Envelope& envelope, std::string* content);
Check read_envelope(int fd, std::uint64_t size, Envelope& envelope);

// A whole state file for the delivery state in `envelope`.
std::string encode_state(const Envelope& envelope);
// Applies a state file to `envelope` (same id and recipients); untouched on failure.
Check apply_state(std::string_view file, Envelope& envelope);

}  // namespace tlsrelay::queue::format
