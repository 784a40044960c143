#include "kirzl/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/json.h"
#include "io/safetensors_layout.h"
#include "kirzl/autograd.hpp"

namespace kirzl::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; big-endian hosts would need byte swapping");

namespace detail {

std::string shown(std::string_view s) {
  constexpr size_t kMax = 120;
  std::string q = json::quote(s.substr(0, kMax));
  std::string out(1, '\'');
  out.append(q, 1, q.size() - 2);
  out += '\'';
  if (s.size() > kMax) out += "...";
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

FileReader::FileReader(const std::string& path, const std::string& who) : path_(path), who_(who) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail_errno("cannot open the file", errno);
  // The destructor does not run when the constructor throws: close first.
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fail_errno("cannot stat the file", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail("not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

void FileReader::read_at(uint64_t offset, void* dst, size_t n, const std::string& what) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_errno("reading " + what + " failed", errno);
    }
    if (r == 0) fail("unexpected end of file while reading " + what + " (was the file truncated while reading?)");
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

void FileReader::fail(const std::string& what, ErrorCode code) const { KIRZL_FAIL(code, who_, ": '", path_, "': ", what); }

void FileReader::fail_errno(const std::string& what, int err) const { fail(what + ": " + errno_text(err)); }

}  // namespace detail

namespace {

using detail::FileReader;
using detail::shape_text;
using detail::shown;

// Every dtype the safetensors format defines, with its width in bits; `kirzl` is set where kirzl
// has a tensor type for it.
struct DTypeInfo {
  const char* name;
  unsigned bits;
  std::optional<DType> kirzl;
};

constexpr DTypeInfo kDTypes[] = {
    {"F64", 64, DType::f64},       {"F32", 32, DType::f32},     {"F16", 16, DType::f16},
    {"BF16", 16, DType::bf16},     {"I64", 64, DType::i64},     {"I32", 32, DType::i32},
    {"U16", 16, DType::u16},       {"U8", 8, DType::u8},        {"I16", 16, std::nullopt},
    {"I8", 8, std::nullopt},       {"U32", 32, std::nullopt},   {"U64", 64, std::nullopt},
    {"BOOL", 8, std::nullopt},     {"C64", 64, std::nullopt},   {"F8_E4M3", 8, std::nullopt},
    {"F8_E5M2", 8, std::nullopt},  {"F8_E8M0", 8, std::nullopt}, {"F8_E4M3FNUZ", 8, std::nullopt},
    {"F8_E5M2FNUZ", 8, std::nullopt}, {"F6_E2M3", 6, std::nullopt}, {"F6_E3M2", 6, std::nullopt},
    {"F4", 4, std::nullopt},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

// Reads and length-checks the header; returns it with the trailing padding kept.
std::string read_header(FileReader& f, const LoadOptions& options) {
  if (f.size() < 8)
    f.fail("the file is " + std::to_string(f.size()) +
           " bytes long, too short for the 8-byte header length of a safetensors file");
  unsigned char len_bytes[8];
  f.read_at(0, len_bytes, 8, "the header length");
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | len_bytes[k];
  const uint64_t available = f.size() - 8;
  if (n > options.max_header_bytes)
    f.fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(options.max_header_bytes) +
           " bytes");
  if (n > available)
    f.fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(available) +
           " bytes that follow it in the file");
  if (n == 0) f.fail("the header is empty");
  std::string header(static_cast<size_t>(n), '\0');
  f.read_at(8, header.data(), header.size(), "the header");
  return header;
}

struct Entry {
  std::string name;
  const DTypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.kirzl == dtype) return d.name;
  KIRZL_FAIL(ErrorCode::Internal, "safetensors_dtype_name: no safetensors name for dtype ", dtype_name(dtype));
}

namespace detail {

SafetensorsPlan plan_safetensors(const std::vector<SafetensorsPlanEntry>& entries,
                                 const std::map<std::string, std::string>& metadata, const std::string& who,
                                 const std::string& path) {
  // Note [data order]: the buffer holds the tensors by decreasing element size (stable), so each
  // starts aligned to its element size given the 8-byte aligned buffer; the header lists them in
  // the order given (StateDict order), which load_safetensors() returns. Tensors are packed
  // without gaps, as the format's reference reader requires.
  SafetensorsPlan plan;
  plan.order.resize(entries.size());
  for (size_t i = 0; i < plan.order.size(); ++i) plan.order[i] = i;
  std::stable_sort(plan.order.begin(), plan.order.end(), [&](size_t a, size_t b) {
    return dtype_size(entries[a].dtype) > dtype_size(entries[b].dtype);
  });
  std::vector<uint64_t> begin(entries.size());
  uint64_t offset = 0;
  for (size_t i : plan.order) {
    begin[i] = offset;
    offset += entries[i].nbytes;
  }

  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& m = doc["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const SafetensorsPlanEntry& e = entries[i];
    doc[e.name] = {{"dtype", safetensors_dtype_name(e.dtype)},
                   {"shape", e.shape},
                   {"data_offsets", {begin[i], begin[i] + e.nbytes}}};
  }
  std::string header;
  try {
    header = doc.dump();
  } catch (const nlohmann::json::type_error& e) {  // invalid UTF-8, which JSON cannot hold
    KIRZL_FAIL(ErrorCode::InvalidArgument, who, ": '", path, "': tensor names and metadata must be UTF-8 text (",
               e.what(), ")");
  }
  while ((8 + header.size()) % 8 != 0) header += ' ';

  const uint64_t n = header.size();
  plan.prefix.resize(8);
  for (int k = 0; k < 8; ++k) plan.prefix[k] = static_cast<char>(static_cast<unsigned char>(n >> (8 * k)));
  plan.prefix += header;
  return plan;
}

}  // namespace detail

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  static const std::string who = "save_safetensors";
  NoGradGuard no_grad;
  // Everything the file will hold, as contiguous CPU tensors, before the file system is touched.
  std::vector<Tensor> host;
  std::vector<detail::SafetensorsPlanEntry> entries;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    KIRZL_CHECK(name != "__metadata__", who, ": '", path, "': a tensor may not be named '__metadata__'");
    KIRZL_CHECK(t.defined(), who, ": '", path, "': tensor '", name, "' is undefined");
    Tensor h = t.detach();
    if (!h.device().is_cpu()) h = h.to(Device::cpu());
    if (!h.is_contiguous()) h = h.contiguous();
    host.push_back(h);
    entries.push_back({name, h.dtype(), h.shape().vec(), h.nbytes()});
  }
  const detail::SafetensorsPlan plan = detail::plan_safetensors(entries, metadata, who, path);

  detail::AtomicFile file(path, who);
  file.write(plan.prefix.data(), plan.prefix.size());
  for (size_t k : plan.order)
    if (host[k].nbytes() > 0) file.write(host[k].data_ptr(), host[k].nbytes());
  file.commit();
}

std::string read_safetensors_header(const std::string& path, const LoadOptions& options) {
  FileReader f(path, "read_safetensors_header");
  std::string h = read_header(f, options);
  while (!h.empty() && h.back() == ' ') h.pop_back();
  return h;
}

namespace detail {

SafetensorsLayout read_safetensors_layout(FileReader& f, const LoadOptions& options) {
  const std::string header = read_header(f, options);
  const uint64_t buffer_start = 8 + header.size();
  const uint64_t buffer_size = f.size() - buffer_start;

  using Json = nlohmann::ordered_json;
  Json root;
  try {
    root = json::parse_untrusted(header, json::Limits{.max_depth = 8, .max_string_bytes = header.size(),
                                                      .max_elements = header.size()});
  } catch (const json::DuplicateKeyError& e) {
    // What a repeated key means where it is.
    const auto& p = e.path();
    if (p.empty()) f.fail("the header names " + shown(e.key()) + " more than once");
    if (p.size() == 1 && p[0] == "__metadata__") f.fail("__metadata__ names " + shown(e.key()) + " more than once");
    if (p.size() == 1) f.fail("tensor " + shown(p[0]) + " has the field " + shown(e.key()) + " more than once");
    f.fail(std::string("the header is not valid JSON: ") + e.what());
  } catch (const json::ParseError& e) {
    f.fail(std::string("the header is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) f.fail(std::string("the header is a JSON ") + root.type_name() + ", not an object");

  SafetensorsLayout out;
  out.file_size = f.size();
  out.data_start = buffer_start;
  std::vector<Entry> entries;
  for (const auto& [name, v] : root.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) f.fail(std::string("__metadata__ is a JSON ") + v.type_name() + ", not an object");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string())
          f.fail("__metadata__ entry " + shown(k) + " is a JSON " + s.type_name() + ", not a string");
        out.metadata.emplace(k, s.get<std::string>());
      }
      continue;
    }
    const std::string what = "tensor " + shown(name);
    if (!v.is_object()) f.fail(what + " is described by a JSON " + v.type_name() + ", not an object");
    for (const auto& [k, field] : v.items()) {
      (void)field;
      if (k != "dtype" && k != "shape" && k != "data_offsets") f.fail(what + " has an unknown field " + shown(k));
    }
    if (!v.contains("dtype")) f.fail(what + " has no 'dtype'");
    if (!v.contains("shape")) f.fail(what + " has no 'shape'");
    if (!v.contains("data_offsets")) f.fail(what + " has no 'data_offsets'");
    const Json& dtype = v["dtype"];
    const Json& shape = v["shape"];
    const Json& offsets = v["data_offsets"];

    Entry e;
    e.name = name;
    if (!dtype.is_string()) f.fail(what + " has a 'dtype' that is not a string");
    e.dtype = find_dtype(dtype.get<std::string>());
    if (!e.dtype) f.fail(what + " has an unknown dtype " + shown(dtype.get<std::string>()));

    // parse_untrusted() accepts integers in the int64 range only.
    if (!shape.is_array()) f.fail(what + " has a 'shape' that is not an array");
    uint64_t bits = e.dtype->bits;
    bool overflow = false;
    for (const auto& d : shape) {
      if (!d.is_number_integer()) f.fail(what + " has a shape entry that is not an integer");
      e.shape.push_back(d.get<int64_t>());
    }
    for (int64_t d : e.shape)
      if (d < 0) f.fail(what + " has shape " + shape_text(e.shape) + " with a negative extent");
    for (int64_t d : e.shape) overflow = overflow || __builtin_mul_overflow(bits, static_cast<uint64_t>(d), &bits);
    if (overflow) f.fail(what + " has shape " + shape_text(e.shape) + " whose byte size overflows 64 bits");

    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_integer() ||
        !offsets[1].is_number_integer())
      f.fail(what + " has 'data_offsets' that are not a pair of integers [begin, end]");
    int64_t b = offsets[0].get<int64_t>(), en = offsets[1].get<int64_t>();
    const std::string off_text = "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "]";
    if (b < 0 || en < b) f.fail(what + " has invalid " + off_text + " (need 0 <= begin <= end)");
    e.begin = static_cast<uint64_t>(b);
    e.end = static_cast<uint64_t>(en);
    if (e.end > buffer_size)
      f.fail(what + " has " + off_text + " beyond the end of the data buffer (" + std::to_string(buffer_size) +
             " bytes)");
    if (bits % 8 != 0 || bits / 8 != e.end - e.begin)
      f.fail(what + " has " + off_text + " but " + e.dtype->name + shape_text(e.shape) + " needs " +
             (bits % 8 ? std::to_string(bits) + " bits" : std::to_string(bits / 8) + " bytes"));
    entries.push_back(std::move(e));
  }

  // No two tensors may share bytes (empty tensors share none).
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k]->begin < by_offset[k - 1]->end)
      f.fail("tensors " + shown(by_offset[k - 1]->name) + " [" + std::to_string(by_offset[k - 1]->begin) + ", " +
             std::to_string(by_offset[k - 1]->end) + "] and " + shown(by_offset[k]->name) + " [" +
             std::to_string(by_offset[k]->begin) + ", " + std::to_string(by_offset[k]->end) + "] overlap");

  // The file is well-formed; now what kirzl cannot represent.
  std::string unsupported;
  for (const Entry& e : entries) {
    std::string why;
    // A tensor's strides are products of its non-zero extents; with a 0 extent the byte size
    // checked above is 0 whatever the others are, so they are checked here.
    int64_t stride = 1;
    bool huge = false;
    for (int64_t d : e.shape) huge = huge || __builtin_mul_overflow(stride, std::max<int64_t>(d, 1), &stride);
    if (!e.dtype->kirzl) why = std::string("dtype ") + e.dtype->name;
    else if (e.shape.size() > static_cast<size_t>(kMaxDims))
      why = std::to_string(e.shape.size()) + " dimensions; kirzl tensors have at most " + std::to_string(kMaxDims);
    else if (huge)
      why = "shape " + shape_text(e.shape) + ": its non-zero extents multiply past 2^63, too large for kirzl's strides";
    if (why.empty()) continue;
    if (!unsupported.empty()) unsupported += ", ";
    unsupported += shown(e.name);
    unsupported += " (" + why + ")";
  }
  if (!unsupported.empty()) f.fail("kirzl cannot load tensor(s) " + unsupported, ErrorCode::Unsupported);

  for (Entry& e : entries)
    out.entries.push_back(SafetensorsEntry{std::move(e.name), *e.dtype->kirzl, std::move(e.shape), e.begin, e.end});
  return out;
}

}  // namespace detail

SafetensorsFile load_safetensors(const std::string& path, const LoadOptions& options) {
  FileReader f(path, "load_safetensors");
  detail::SafetensorsLayout layout = detail::read_safetensors_layout(f, options);
  SafetensorsFile out;
  out.metadata = std::move(layout.metadata);
  // Allocation is bounded by the file size: every tensor's bytes are distinct bytes of the file.
  for (const detail::SafetensorsEntry& e : layout.entries) {
    Tensor t = empty(Shape(e.shape), {.dtype = e.dtype});
    if (e.end > e.begin)
      f.read_at(layout.data_start + e.begin, t.data_ptr(), e.end - e.begin, "tensor " + shown(e.name));
    out.tensors.insert(e.name, t);
  }
  return out;
}

}  // namespace kirzl::io
