// Test-only HTJ2K (JPEG 2000 Part 15) encoder built on OpenJPH, so the corpus test can check that
// our OpenJPEG-based decoder handles High-Throughput JPEG 2000 (no such file in the pydicom
// corpus, and neither DCMTK nor GDCM in Debian 12 writes one). Lossless (reversible 5/3).
//
//   htj2k_encode WIDTH HEIGHT COMPONENTS BITS SIGNED IN.raw OUT.j2c
//
// IN.raw holds interleaved samples, 1 byte each up to 8 bits, else 2 bytes little-endian.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <openjph/ojph_arch.h> // defines OJPH_EXPORT, which the other headers need first
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_params.h>

int main(int argc, char **argv)
{
    if (argc != 8) {
        std::fprintf(stderr, "usage: htj2k_encode W H C BITS SIGNED IN.raw OUT.j2c\n");
        return 2;
    }
    const ojph::ui32 w = (ojph::ui32)std::atoi(argv[1]), h = (ojph::ui32)std::atoi(argv[2]);
    const ojph::ui32 nc = (ojph::ui32)std::atoi(argv[3]), bits = (ojph::ui32)std::atoi(argv[4]);
    const bool sgn = std::atoi(argv[5]) != 0;
    const size_t bps = bits > 8 ? 2 : 1;
    std::vector<unsigned char> in((size_t)w * h * nc * bps);
    std::FILE *f = std::fopen(argv[6], "rb");
    if (f == nullptr || std::fread(in.data(), 1, in.size(), f) != in.size()) {
        std::fprintf(stderr, "htj2k_encode: cannot read %s\n", argv[6]);
        return 1;
    }
    std::fclose(f);

    ojph::codestream cs;
    ojph::param_siz siz = cs.access_siz();
    siz.set_image_extent(ojph::point(w, h));
    siz.set_num_components(nc);
    for (ojph::ui32 c = 0; c < nc; c++)
        siz.set_component(c, ojph::point(1, 1), bits, sgn);
    ojph::param_cod cod = cs.access_cod();
    cod.set_num_decomposition(4);
    cod.set_block_dims(64, 64);
    cod.set_color_transform(nc == 3);
    cod.set_reversible(true);
    cs.set_planar(false);
    ojph::j2c_outfile out;
    out.open(argv[7]);
    cs.write_headers(&out);
    ojph::ui32 comp = 0;
    ojph::line_buf *line = cs.exchange(nullptr, comp);
    for (ojph::ui32 y = 0; y < h; y++) {
        for (ojph::ui32 k = 0; k < nc; k++) {
            ojph::si32 *dp = line->i32;
            for (ojph::ui32 x = 0; x < w; x++) {
                size_t i = ((size_t)y * w + x) * nc + comp;
                ojph::si32 v;
                if (bps == 1) {
                    v = sgn ? (ojph::si32)(signed char)in[i] : (ojph::si32)in[i];
                } else {
                    unsigned u = (unsigned)in[2 * i] | (unsigned)in[2 * i + 1] << 8;
                    v = sgn ? (ojph::si32)(short)u : (ojph::si32)u;
                }
                dp[x] = v;
            }
            line = cs.exchange(line, comp);
        }
    }
    cs.flush();
    cs.close();
    return 0;
}
