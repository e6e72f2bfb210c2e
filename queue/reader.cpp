// Reading message files back: the full validation used at recovery and content load,
// and the cheap envelope read used by list(). Formats are described in format.hpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "queue/format.hpp"
#include "queue/io.hpp"

namespace tlsrelay::queue::format {

namespace {

Check io_failure(std::error_code ec) { return {"read error: " + ec.message(), true}; }

std::uint64_t get_le(const char* p, int n) {
    std::uint64_t v = 0;
    for (int i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

struct Footer {
    std::uint64_t envelope_offset = 0;
    std::string envelope_hash;
    std::string file_hash;
};

Check check_size(std::uint64_t size) {
    if (size < header_size + footer_size) return {size == 0 ? "empty file" : "file too short"};
    return {};
}

// end: the last footer_size bytes of a file of `size` bytes (check_size passed).
Check parse_footer(std::string_view end, std::uint64_t size, Footer& footer) {
    if (end.substr(0, record_header_size) !=
        record_header(rec::end, footer_size - record_header_size))
        return {"missing end record"};
    footer.envelope_offset = get_le(end.data() + record_header_size, 8);
    if (footer.envelope_offset < header_size || footer.envelope_offset > size - footer_size ||
        size - footer_size - footer.envelope_offset > max_envelope)
        return {"bad envelope offset"};
    footer.envelope_hash = end.substr(record_header_size + 8, digest_size);
    footer.file_hash = end.substr(footer_size - digest_size);
    return {};
}

Check read_footer(int fd, std::uint64_t size, Footer& footer) {
    if (Check c = check_size(size); !c.ok()) return c;
    std::string end(footer_size, '\0');
    if (auto ec = io::read_at(fd, end.data(), end.size(), size - footer_size)) return io_failure(ec);
    return parse_footer(end, size, footer);
}

// Sequential buffered reader that hashes every byte it hands out.
class SeqReader {
public:
    explicit SeqReader(int fd) : fd_(fd), buffer_(chunk_size) {}

    Check read(std::uint64_t n, std::string* out) {
        while (n > 0) {
            if (pos_ == len_) {
                if (Check c = fill(); !c.ok()) return c;
            }
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, len_ - pos_));
            std::string_view bytes(buffer_.data() + pos_, take);
            sha_.update(bytes);
            if (out) out->append(bytes);
            pos_ += take;
            offset_ += take;
            n -= take;
        }
        return {};
    }
    std::uint64_t offset() const { return offset_; }
    Digest finish() { return sha_.finish(); }

private:
    Check fill() {
        ssize_t n;
        do {
            n = ::pread(fd_, buffer_.data(), buffer_.size(), static_cast<off_t>(offset_));
        } while (n < 0 && errno == EINTR);
        if (n < 0) return io_failure(io::errno_code());
        if (n == 0) return {"file shrank while being read"};
        pos_ = 0;
        len_ = static_cast<std::size_t>(n);
        return {};
    }

    int fd_;
    std::vector<char> buffer_;
    std::size_t pos_ = 0, len_ = 0;
    std::uint64_t offset_ = 0;
    Sha256 sha_;
};

Check read_content(SeqReader& in, std::uint64_t end, std::string* content,
                   std::uint64_t& total) {
    std::string head;
    while (in.offset() < end) {
        if (end - in.offset() < record_header_size) return {"truncated content record"};
        head.clear();
        if (Check c = in.read(record_header_size, &head); !c.ok()) return c;
        if (head[0] != rec::content) return {"unexpected record type in content"};
        std::uint64_t length = get_le(head.data() + 1, 4);
        if (length > chunk_size || length > end - in.offset()) return {"bad content record length"};
        if (Check c = in.read(length, content); !c.ok()) return c;
        total += length;
    }
    return {};
}

Check check_header(std::string_view header) {
    if (header.substr(0, message_magic.size()) != message_magic) return {"not a queue file"};
    if (header != file_header(message_magic)) return {"unsupported format version"};
    return {};
}

Check check_envelope(std::string_view region, const Footer& footer, Envelope& envelope) {
    if (as_bytes(sha256(region)) != footer.envelope_hash) return {"envelope checksum mismatch"};
    std::string why;
    if (!parse_envelope(region, envelope, why)) return {why};
    return {};
}

// The envelope of a whole small file read into memory.
Check envelope_in(std::string_view file, Envelope& envelope) {
    Footer footer;
    if (Check c = check_size(file.size()); !c.ok()) return c;
    if (Check c = parse_footer(file.substr(file.size() - footer_size), file.size(), footer); !c.ok())
        return c;
    if (Check c = check_header(file.substr(0, header_size)); !c.ok()) return c;
    std::size_t offset = static_cast<std::size_t>(footer.envelope_offset);
    return check_envelope(file.substr(offset, file.size() - footer_size - offset), footer, envelope);
}

}  // namespace

Check read_message(int fd, Envelope& envelope, std::string* content) {
    std::uint64_t size = 0;
    if (auto ec = io::file_size(fd, size)) return io_failure(ec);
    return read_message(fd, size, envelope, content);
}

Check read_message(int fd, std::uint64_t size, Envelope& envelope, std::string* content) {
    Footer footer;
    if (Check c = read_footer(fd, size, footer); !c.ok()) return c;
    SeqReader in(fd);
    std::string header, region;
    if (Check c = in.read(header_size, &header); !c.ok()) return c;
    if (Check c = check_header(header); !c.ok()) return c;
    std::uint64_t content_size = 0;
    if (Check c = read_content(in, footer.envelope_offset, content, content_size); !c.ok())
        return c;
    if (Check c = in.read(size - footer_size - footer.envelope_offset, &region); !c.ok()) return c;
    if (Check c = in.read(footer_size - digest_size, nullptr); !c.ok()) return c;
    if (as_bytes(in.finish()) != footer.file_hash) return {"checksum mismatch"};
    Envelope e;
    if (Check c = check_envelope(region, footer, e); !c.ok()) return c;
    if (e.size != content_size) return {"size record does not match the content"};
    envelope = std::move(e);
    return {};
}

Check read_envelope(int fd, Envelope& envelope) {
    std::uint64_t size = 0;
    if (auto ec = io::file_size(fd, size)) return io_failure(ec);
    return read_envelope(fd, size, envelope);
}

Check read_envelope(int fd, std::uint64_t size, Envelope& envelope) {
    if (size <= chunk_size) {  // one read instead of three
        std::string file(static_cast<std::size_t>(size), '\0');
        if (auto ec = io::read_at(fd, file.data(), file.size(), 0)) return io_failure(ec);
        return envelope_in(file, envelope);
    }
    Footer footer;
    if (Check c = read_footer(fd, size, footer); !c.ok()) return c;
    std::string header(header_size, '\0');
    if (auto ec = io::read_at(fd, header.data(), header.size(), 0)) return io_failure(ec);
    if (Check c = check_header(header); !c.ok()) return c;
    std::string region(size - footer_size - footer.envelope_offset, '\0');
    if (auto ec = io::read_at(fd, region.data(), region.size(), footer.envelope_offset))
        return io_failure(ec);
    return check_envelope(region, footer, envelope);
}

}  // namespace tlsrelay::queue::format
