// A C interface over OpenJPH for one job: encode samples held in memory as a
// lossless HTJ2K codestream with RPCL progression (DICOM transfer syntax
// 1.2.840.10008.1.2.4.202). No C++ exception crosses into Rust: every failure
// becomes a non-zero return.

#include <openjph/ojph_arch.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_params.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int himcp_htj2k_encode(const int32_t *samples, uint32_t width,
                                  uint32_t height, uint32_t components,
                                  uint32_t bit_depth, int is_signed,
                                  uint8_t **out, size_t *out_len) {
  *out = nullptr;
  *out_len = 0;
  if (width == 0 || height == 0 || (components != 1 && components != 3)) {
    return 3;
  }
  try {
    ojph::codestream codestream;
    ojph::param_siz siz = codestream.access_siz();
    siz.set_image_extent(ojph::point(width, height));
    siz.set_num_components(components);
    for (uint32_t c = 0; c < components; ++c) {
      siz.set_component(c, ojph::point(1, 1), bit_depth, is_signed != 0);
    }
    // Five decomposition levels, fewer for images too small to halve that often.
    uint32_t smallest = width < height ? width : height;
    uint32_t levels = 0;
    while (levels < 5 && (smallest >> (levels + 1)) > 0) {
      ++levels;
    }
    ojph::param_cod cod = codestream.access_cod();
    cod.set_num_decomposition(levels);
    cod.set_block_dims(64, 64);
    cod.set_progression_order("RPCL");
    cod.set_color_transform(components == 3);
    cod.set_reversible(true);
    codestream.set_planar(false);

    ojph::mem_outfile file;
    file.open();
    codestream.write_headers(&file);
    ojph::ui32 component = 0;
    ojph::line_buf *line = codestream.exchange(nullptr, component);
    for (uint32_t y = 0; y < height; ++y) {
      const int32_t *row = samples + static_cast<size_t>(y) * width * components;
      for (uint32_t k = 0; k < components; ++k) {
        ojph::si32 *target = line->i32;
        if (components == 1) {
          std::memcpy(target, row, static_cast<size_t>(width) * sizeof(int32_t));
        } else {
          for (uint32_t x = 0; x < width; ++x) {
            target[x] = row[static_cast<size_t>(x) * components + component];
          }
        }
        line = codestream.exchange(line, component);
      }
    }
    codestream.flush();
    size_t size = static_cast<size_t>(file.tell());
    uint8_t *buffer = static_cast<uint8_t *>(std::malloc(size));
    if (buffer == nullptr) {
      codestream.close();
      return 2;
    }
    std::memcpy(buffer, file.get_data(), size);
    codestream.close();
    *out = buffer;
    *out_len = size;
    return 0;
  } catch (...) {
    return 1;
  }
}

extern "C" void himcp_htj2k_free(uint8_t *buffer) { std::free(buffer); }

// Decodes `codestream` with OpenJPH and compares it, sample by sample, with
// `samples` (row order, components interleaved): 0 when they are equal, 4
// when they differ or the image is not the one described, another non-zero
// value when the codestream cannot be decoded.
extern "C" int himcp_htj2k_verify(const uint8_t *codestream, size_t length,
                                  const int32_t *samples, uint32_t width,
                                  uint32_t height, uint32_t components) {
  try {
    ojph::mem_infile file;
    file.open(codestream, length);
    ojph::codestream decoder;
    decoder.read_headers(&file);
    ojph::param_siz siz = decoder.access_siz();
    ojph::point extent = siz.get_image_extent();
    ojph::point offset = siz.get_image_offset();
    if (extent.x - offset.x != width || extent.y - offset.y != height ||
        siz.get_num_components() != components) {
      decoder.close();
      return 4;
    }
    decoder.set_planar(false);
    decoder.create();
    int result = 0;
    for (uint32_t y = 0; y < height; ++y) {
      const int32_t *row = samples + static_cast<size_t>(y) * width * components;
      for (uint32_t k = 0; k < components; ++k) {
        ojph::ui32 component = 0;
        ojph::line_buf *line = decoder.pull(component);
        if (result != 0 || line == nullptr || component >= components) {
          result = 4;
          continue;
        }
        const ojph::si32 *decoded = line->i32;
        if (components == 1) {
          if (std::memcmp(decoded, row, static_cast<size_t>(width) * sizeof(int32_t)) != 0) {
            result = 4;
          }
          continue;
        }
        for (uint32_t x = 0; x < width; ++x) {
          if (decoded[x] != row[static_cast<size_t>(x) * components + component]) {
            result = 4;
            break;
          }
        }
      }
    }
    decoder.close();
    return result;
  } catch (...) {
    return 1;
  }
}
