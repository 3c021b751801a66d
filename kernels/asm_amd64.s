//go:build amd64 && !purego

#include "textflag.h"

// Vector kernels for simd_amd64.go: an AVX-512F version (16 lanes, masked
// tails) and an AVX2+FMA version (8 lanes, VMASKMOVPS tails) of each.
// Every loop keeps four independent accumulators or streams so that the FMA
// latency is hidden. The Go declarations document the contracts.

// Constants of the vectorised exp: e^x = 2^n · p(r), n = round(x·log2 e),
// r = x − n·ln2 (ln2 split in a high part exact in n·hi and a low part),
// p the degree-7 Taylor polynomial of e^r on |r| ≤ ln2/2.
DATA expc<>+0(SB)/4, $0x3fb8aa3b  // log2 e
DATA expc<>+4(SB)/4, $0x3f318000  // ln2 hi = 0.693359375
DATA expc<>+8(SB)/4, $0xb95e8083  // ln2 lo = ln2 − hi
DATA expc<>+12(SB)/4, $0x3f800000 // 1 = 1/0! = 1/1!
DATA expc<>+16(SB)/4, $0x3f000000 // 1/2!
DATA expc<>+20(SB)/4, $0x3e2aaaab // 1/3!
DATA expc<>+24(SB)/4, $0x3d2aaaab // 1/4!
DATA expc<>+28(SB)/4, $0x3c088889 // 1/5!
DATA expc<>+32(SB)/4, $0x3ab60b61 // 1/6!
DATA expc<>+36(SB)/4, $0x39500d01 // 1/7!
DATA expc<>+40(SB)/4, $0xc2ce0000 // −103: below it e^x is 0 in float32 (AVX-512 clamp)
DATA expc<>+44(SB)/4, $0x42b00000 // 88: above it e^x overflows (clamp)
DATA expc<>+48(SB)/4, $0xc2af3333 // −87.6: n ≥ −126 keeps 2^n normal; below it e^x < 2^−126 (AVX2 flushes it to 0)
DATA expc<>+52(SB)/4, $0x0000007f // exponent bias 127
GLOBL expc<>(SB), RODATA|NOPTR, $56

// tailMask: 8 all-ones words then 8 zero words. The 32 bytes at
// tailMask+4·(8−n) are a VMASKMOVPS mask selecting the first n lanes.
DATA tailMask<>+0(SB)/8, $0xffffffffffffffff
DATA tailMask<>+8(SB)/8, $0xffffffffffffffff
DATA tailMask<>+16(SB)/8, $0xffffffffffffffff
DATA tailMask<>+24(SB)/8, $0xffffffffffffffff
DATA tailMask<>+32(SB)/8, $0
DATA tailMask<>+40(SB)/8, $0
DATA tailMask<>+48(SB)/8, $0
DATA tailMask<>+56(SB)/8, $0
GLOBL tailMask<>(SB), RODATA|NOPTR, $64

// KMASK sets K1 to the low n bits, n = CX in [1, 15]; clobbers AX.
#define KMASK \
	MOVL  $1, AX \
	SHLL  CX, AX \
	DECL  AX     \
	KMOVW AX, K1

// YMASK(r) loads into r the VMASKMOVPS mask of the first n lanes,
// n = CX in [1, 7]; clobbers AX and DX.
#define YMASK(r) \
	MOVQ    $8, AX             \
	SUBQ    CX, AX             \
	LEAQ    tailMask<>(SB), DX \
	VMOVDQU (DX)(AX*4), r

// HSUM512 leaves in X0 the sum of the 16 lanes of Z0; clobbers Z1.
#define HSUM512 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPS        Y1, Y0, Y0 \
	VEXTRACTF128  $1, Y0, X1 \
	VADDPS        X1, X0, X0 \
	VMOVHLPS      X0, X0, X1 \
	VADDPS        X1, X0, X0 \
	VMOVSHDUP     X0, X1     \
	VADDSS        X1, X0, X0

// HSUM256 leaves in X0 the sum of the 8 lanes of Y0; clobbers Y1.
#define HSUM256 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVHLPS     X0, X0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVSHDUP    X0, X1     \
	VADDSS       X1, X0, X0

// EXP512 replaces Z4 (x − m, already computed) by e^(Z4); uses the
// constants in Z16..Z27 and clobbers Z5, Z6.
#define EXP512 \
	VMAXPS      Z26, Z4, Z4  \
	VMINPS      Z27, Z4, Z4  \
	VMULPS      Z16, Z4, Z5  \
	VRNDSCALEPS $0, Z5, Z5   \
	VFNMADD231PS Z17, Z5, Z4 \
	VFNMADD231PS Z18, Z5, Z4 \
	VMOVAPS     Z25, Z6      \
	VFMADD213PS Z24, Z4, Z6  \
	VFMADD213PS Z23, Z4, Z6  \
	VFMADD213PS Z22, Z4, Z6  \
	VFMADD213PS Z21, Z4, Z6  \
	VFMADD213PS Z20, Z4, Z6  \
	VFMADD213PS Z19, Z4, Z6  \
	VFMADD213PS Z19, Z4, Z6  \
	VSCALEFPS   Z5, Z6, Z4

// ACC512 adds the 16 lanes of Z4 to the float64 accumulators Z29, Z30;
// clobbers Z5, Z6.
#define ACC512 \
	VCVTPS2PD     Y4, Z5     \
	VADDPD        Z5, Z29, Z29 \
	VEXTRACTF64X4 $1, Z4, Y6 \
	VCVTPS2PD     Y6, Z6     \
	VADDPD        Z6, Z30, Z30

// EXP256 replaces Y4 by e^(Y4 − Y8), exactly 0 where Y4 − Y8 < −87.6;
// uses the constants in Y11..Y15 and 0..255(SP) and clobbers Y0, Y5, Y7.
#define EXP256 \
	VSUBPS       Y8, Y4, Y4       \
	VCMPPS       $1, Y12, Y4, Y0  \
	VMAXPS       Y12, Y4, Y4      \
	VMINPS       Y13, Y4, Y4      \
	VMULPS       Y11, Y4, Y5      \
	VROUNDPS     $0, Y5, Y5       \
	VFNMADD231PS Y14, Y5, Y4      \
	VFNMADD231PS Y15, Y5, Y4      \
	VMOVUPS      192(SP), Y7      \
	VFMADD213PS  160(SP), Y4, Y7  \
	VFMADD213PS  128(SP), Y4, Y7  \
	VFMADD213PS  96(SP), Y4, Y7   \
	VFMADD213PS  64(SP), Y4, Y7   \
	VFMADD213PS  32(SP), Y4, Y7   \
	VFMADD213PS  (SP), Y4, Y7     \
	VFMADD213PS  (SP), Y4, Y7     \
	VCVTPS2DQ    Y5, Y5           \
	VPADDD       224(SP), Y5, Y5  \
	VPSLLD       $23, Y5, Y5      \
	VMULPS       Y5, Y7, Y4       \
	VANDNPS      Y4, Y0, Y4

// ACC256 adds the 8 lanes of Y4 to the float64 accumulators Y9, Y10;
// clobbers Y5.
#define ACC256 \
	VCVTPS2PD    X4, Y5      \
	VADDPD       Y5, Y9, Y9  \
	VEXTRACTF128 $1, Y4, X5  \
	VCVTPS2PD    X5, Y5      \
	VADDPD       Y5, Y10, Y10

// func dotAVX512(a, b []float32) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JB     d512_16

d512_64:
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JAE         d512_64

d512_16:
	CMPQ        CX, $16
	JB          d512_tail
	VMOVUPS     (SI), Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         d512_16

d512_tail:
	TESTQ       CX, CX
	JZ          d512_sum
	KMASK
	VMOVUPS.Z   (SI), K1, Z4
	VMOVUPS.Z   (DI), K1, Z5
	VFMADD231PS Z5, Z4, Z1

d512_sum:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM512
	VZEROUPPER
	MOVSS  X0, ret+48(FP)
	RET

// func dotAVX2(a, b []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     d256_8

d256_32:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         d256_32

d256_8:
	CMPQ        CX, $8
	JB          d256_tail
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         d256_8

d256_tail:
	TESTQ       CX, CX
	JZ          d256_sum
	YMASK(Y15)
	VMASKMOVPS  (SI), Y15, Y4
	VMASKMOVPS  (DI), Y15, Y5
	VFMADD231PS Y5, Y4, Y1

d256_sum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM256
	VZEROUPPER
	MOVSS  X0, ret+48(FP)
	RET

// func axpyAVX512(alpha float32, x, y []float32)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Z31
	MOVQ         x_base+8(FP), SI
	MOVQ         x_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	CMPQ         CX, $64
	JB           a512_16

a512_64:
	VMOVUPS     (DI), Z0
	VMOVUPS     64(DI), Z1
	VMOVUPS     128(DI), Z2
	VMOVUPS     192(DI), Z3
	VFMADD231PS (SI), Z31, Z0
	VFMADD231PS 64(SI), Z31, Z1
	VFMADD231PS 128(SI), Z31, Z2
	VFMADD231PS 192(SI), Z31, Z3
	VMOVUPS     Z0, (DI)
	VMOVUPS     Z1, 64(DI)
	VMOVUPS     Z2, 128(DI)
	VMOVUPS     Z3, 192(DI)
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JAE         a512_64

a512_16:
	CMPQ        CX, $16
	JB          a512_tail
	VMOVUPS     (DI), Z0
	VFMADD231PS (SI), Z31, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         a512_16

a512_tail:
	TESTQ       CX, CX
	JZ          a512_done
	KMASK
	VMOVUPS.Z   (DI), K1, Z0
	VMOVUPS.Z   (SI), K1, Z4
	VFMADD231PS Z4, Z31, Z0
	VMOVUPS     Z0, K1, (DI)

a512_done:
	VZEROUPPER
	RET

// func axpyAVX2(alpha float32, x, y []float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	VBROADCASTSS alpha+0(FP), Y14
	MOVQ         x_base+8(FP), SI
	MOVQ         x_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	CMPQ         CX, $32
	JB           a256_8

a256_32:
	VMOVUPS     (DI), Y0
	VMOVUPS     32(DI), Y1
	VMOVUPS     64(DI), Y2
	VMOVUPS     96(DI), Y3
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS 32(SI), Y14, Y1
	VFMADD231PS 64(SI), Y14, Y2
	VFMADD231PS 96(SI), Y14, Y3
	VMOVUPS     Y0, (DI)
	VMOVUPS     Y1, 32(DI)
	VMOVUPS     Y2, 64(DI)
	VMOVUPS     Y3, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         a256_32

a256_8:
	CMPQ        CX, $8
	JB          a256_tail
	VMOVUPS     (DI), Y0
	VFMADD231PS (SI), Y14, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         a256_8

a256_tail:
	TESTQ       CX, CX
	JZ          a256_done
	YMASK(Y15)
	VMASKMOVPS  (DI), Y15, Y0
	VMASKMOVPS  (SI), Y15, Y4
	VFMADD231PS Y4, Y14, Y0
	VMASKMOVPS  Y0, Y15, (DI)

a256_done:
	VZEROUPPER
	RET

// func maxAVX512(xs []float32) float32
TEXT ·maxAVX512(SB), NOSPLIT, $0-28
	MOVQ         xs_base+0(FP), SI
	MOVQ         xs_len+8(FP), CX
	VBROADCASTSS (SI), Z0
	VMOVAPS      Z0, Z1
	VMOVAPS      Z0, Z2
	VMOVAPS      Z0, Z3
	CMPQ         CX, $64
	JB           m512_16

m512_64:
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	VMAXPS 128(SI), Z2, Z2
	VMAXPS 192(SI), Z3, Z3
	ADDQ   $256, SI
	SUBQ   $64, CX
	CMPQ   CX, $64
	JAE    m512_64

m512_16:
	CMPQ   CX, $16
	JB     m512_tail
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    m512_16

m512_tail:
	TESTQ   CX, CX
	JZ      m512_red
	KMASK
	VMOVAPS Z0, Z4
	VMOVUPS (SI), K1, Z4 // merge: lanes past the end keep a value already seen
	VMAXPS  Z4, Z1, Z1

m512_red:
	VMAXPS        Z1, Z0, Z0
	VMAXPS        Z3, Z2, Z2
	VMAXPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func maxAVX2(xs []float32) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ         xs_base+0(FP), SI
	MOVQ         xs_len+8(FP), CX
	VBROADCASTSS (SI), Y0
	VMOVAPS      Y0, Y1
	VMOVAPS      Y0, Y2
	VMOVAPS      Y0, Y3
	CMPQ         CX, $32
	JB           m256_8

m256_32:
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	VMAXPS 64(SI), Y2, Y2
	VMAXPS 96(SI), Y3, Y3
	ADDQ   $128, SI
	SUBQ   $32, CX
	CMPQ   CX, $32
	JAE    m256_32

m256_8:
	CMPQ   CX, $8
	JB     m256_tail
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    m256_8

m256_tail:
	TESTQ     CX, CX
	JZ        m256_red
	YMASK(Y15)
	VMASKMOVPS (SI), Y15, Y4
	VBLENDVPS Y15, Y4, Y0, Y4 // lanes past the end take a value already seen
	VMAXPS    Y4, Y1, Y1

m256_red:
	VMAXPS       Y1, Y0, Y0
	VMAXPS       Y3, Y2, Y2
	VMAXPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// func expSubSumAVX512(xs []float32, m float32) float64
TEXT ·expSubSumAVX512(SB), NOSPLIT, $0-40
	MOVQ         xs_base+0(FP), SI
	MOVQ         xs_len+8(FP), CX
	VBROADCASTSS m+24(FP), Z31
	VBROADCASTSS expc<>+0(SB), Z16
	VBROADCASTSS expc<>+4(SB), Z17
	VBROADCASTSS expc<>+8(SB), Z18
	VBROADCASTSS expc<>+12(SB), Z19
	VBROADCASTSS expc<>+16(SB), Z20
	VBROADCASTSS expc<>+20(SB), Z21
	VBROADCASTSS expc<>+24(SB), Z22
	VBROADCASTSS expc<>+28(SB), Z23
	VBROADCASTSS expc<>+32(SB), Z24
	VBROADCASTSS expc<>+36(SB), Z25
	VBROADCASTSS expc<>+40(SB), Z26
	VBROADCASTSS expc<>+44(SB), Z27
	VPXORQ       Z29, Z29, Z29
	VPXORQ       Z30, Z30, Z30

e512_16:
	CMPQ    CX, $16
	JB      e512_tail
	VMOVUPS (SI), Z4
	VSUBPS  Z31, Z4, Z4
	EXP512
	VMOVUPS Z4, (SI)
	ACC512
	ADDQ    $64, SI
	SUBQ    $16, CX
	JMP     e512_16

e512_tail:
	TESTQ     CX, CX
	JZ        e512_sum
	KMASK
	VMOVUPS.Z (SI), K1, Z4
	VSUBPS    Z31, Z4, Z4
	EXP512
	VMOVUPS.Z Z4, K1, Z4 // lanes past the end add nothing
	VMOVUPS   Z4, K1, (SI)
	ACC512

e512_sum:
	VADDPD        Z30, Z29, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPD        X1, X0, X0
	VUNPCKHPD     X0, X0, X1
	VADDSD        X1, X0, X0
	VZEROUPPER
	MOVSD         X0, ret+32(FP)
	RET

// func expSubSumAVX2(xs []float32, m float32) float64
TEXT ·expSubSumAVX2(SB), NOSPLIT, $256-40
	MOVQ         xs_base+0(FP), SI
	MOVQ         xs_len+8(FP), CX
	VBROADCASTSS m+24(FP), Y8
	VBROADCASTSS expc<>+0(SB), Y11
	VBROADCASTSS expc<>+48(SB), Y12
	VBROADCASTSS expc<>+44(SB), Y13
	VBROADCASTSS expc<>+4(SB), Y14
	VBROADCASTSS expc<>+8(SB), Y15
	VBROADCASTSS expc<>+12(SB), Y0
	VMOVUPS      Y0, (SP)
	VBROADCASTSS expc<>+16(SB), Y0
	VMOVUPS      Y0, 32(SP)
	VBROADCASTSS expc<>+20(SB), Y0
	VMOVUPS      Y0, 64(SP)
	VBROADCASTSS expc<>+24(SB), Y0
	VMOVUPS      Y0, 96(SP)
	VBROADCASTSS expc<>+28(SB), Y0
	VMOVUPS      Y0, 128(SP)
	VBROADCASTSS expc<>+32(SB), Y0
	VMOVUPS      Y0, 160(SP)
	VBROADCASTSS expc<>+36(SB), Y0
	VMOVUPS      Y0, 192(SP)
	VPBROADCASTD expc<>+52(SB), Y0
	VMOVDQU      Y0, 224(SP)
	VXORPD       Y9, Y9, Y9
	VXORPD       Y10, Y10, Y10

e256_8:
	CMPQ    CX, $8
	JB      e256_tail
	VMOVUPS (SI), Y4
	EXP256
	VMOVUPS Y4, (SI)
	ACC256
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     e256_8

e256_tail:
	TESTQ      CX, CX
	JZ         e256_sum
	YMASK(Y6)
	VMASKMOVPS (SI), Y6, Y4
	EXP256
	VANDPS     Y6, Y4, Y4 // lanes past the end add nothing
	VMASKMOVPS Y4, Y6, (SI)
	ACC256

e256_sum:
	VADDPD       Y10, Y9, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VUNPCKHPD    X0, X0, X1
	VADDSD       X1, X0, X0
	VZEROUPPER
	MOVSD        X0, ret+32(FP)
	RET

// func scaleAVX512(s float32, xs []float32)
TEXT ·scaleAVX512(SB), NOSPLIT, $0-32
	VBROADCASTSS s+0(FP), Z31
	MOVQ         xs_base+8(FP), SI
	MOVQ         xs_len+16(FP), CX

s512_16:
	CMPQ    CX, $16
	JB      s512_tail
	VMULPS  (SI), Z31, Z0
	VMOVUPS Z0, (SI)
	ADDQ    $64, SI
	SUBQ    $16, CX
	JMP     s512_16

s512_tail:
	TESTQ     CX, CX
	JZ        s512_done
	KMASK
	VMOVUPS.Z (SI), K1, Z0
	VMULPS    Z0, Z31, Z0
	VMOVUPS   Z0, K1, (SI)

s512_done:
	VZEROUPPER
	RET

// func scaleAVX2(s float32, xs []float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS s+0(FP), Y14
	MOVQ         xs_base+8(FP), SI
	MOVQ         xs_len+16(FP), CX

s256_8:
	CMPQ    CX, $8
	JB      s256_tail
	VMULPS  (SI), Y14, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     s256_8

s256_tail:
	TESTQ      CX, CX
	JZ         s256_done
	YMASK(Y15)
	VMASKMOVPS (SI), Y15, Y0
	VMULPS     Y0, Y14, Y0
	VMASKMOVPS Y0, Y15, (SI)

s256_done:
	VZEROUPPER
	RET

// func sumAVX512(xs []float32) float32
TEXT ·sumAVX512(SB), NOSPLIT, $0-28
	MOVQ   xs_base+0(FP), SI
	MOVQ   xs_len+8(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	CMPQ   CX, $128
	JB     u512_16

u512_128:
	VADDPS (SI), Z0, Z0
	VADDPS 64(SI), Z1, Z1
	VADDPS 128(SI), Z2, Z2
	VADDPS 192(SI), Z3, Z3
	VADDPS 256(SI), Z4, Z4
	VADDPS 320(SI), Z5, Z5
	VADDPS 384(SI), Z6, Z6
	VADDPS 448(SI), Z7, Z7
	ADDQ   $512, SI
	SUBQ   $128, CX
	CMPQ   CX, $128
	JAE    u512_128

u512_16:
	CMPQ   CX, $16
	JB     u512_tail
	VADDPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    u512_16

u512_tail:
	TESTQ     CX, CX
	JZ        u512_sum
	KMASK
	VMOVUPS.Z (SI), K1, Z8
	VADDPS    Z8, Z1, Z1

u512_sum:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM512
	VZEROUPPER
	MOVSS  X0, ret+24(FP)
	RET

// func dotRowsAVX512(q, k []float32, d int, out []float32, scale float32)
// out[i] = scale·(q[:d]·k[i·d:(i+1)·d]) for i < len(out); d a positive
// multiple of 16. Four rows at a time share each load of q; their four sums
// are reduced together with horizontal adds.
TEXT ·dotRowsAVX512(SB), NOSPLIT, $0-84
	MOVQ         q_base+0(FP), R8
	MOVQ         k_base+24(FP), SI
	MOVQ         d+48(FP), DX
	MOVQ         out_base+56(FP), DI
	MOVQ         out_len+64(FP), BX
	VBROADCASTSS scale+80(FP), X15
	MOVQ         DX, R9
	SHLQ         $2, R9            // row bytes
	LEAQ         (R9)(R9*2), R10   // 3 rows
	CMPQ         BX, $4
	JB           r512_one

r512_four:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ   AX, AX                  // byte offset within the row

r512_four_col:
	VMOVUPS     (R8)(AX*1), Z8
	LEAQ        (SI)(AX*1), R11
	VFMADD231PS (R11), Z8, Z0
	VFMADD231PS (R11)(R9*1), Z8, Z1
	VFMADD231PS (R11)(R9*2), Z8, Z2
	VFMADD231PS (R11)(R10*1), Z8, Z3
	ADDQ        $64, AX
	CMPQ        AX, R9
	JB          r512_four_col

	// Reduce Z0..Z3 to four sums in X0.
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS        Y4, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y5
	VADDPS        Y5, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y6
	VADDPS        Y6, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y7
	VADDPS        Y7, Y3, Y3
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMULPS        X15, X0, X0
	VMOVUPS       X0, (DI)
	LEAQ          (SI)(R9*4), SI
	ADDQ          $16, DI
	SUBQ          $4, BX
	CMPQ          BX, $4
	JAE           r512_four

r512_one:
	TESTQ BX, BX
	JZ    r512_done
	VPXORD Z0, Z0, Z0
	XORQ  AX, AX

r512_one_col:
	VMOVUPS     (R8)(AX*1), Z8
	VFMADD231PS (SI)(AX*1), Z8, Z0
	ADDQ        $64, AX
	CMPQ        AX, R9
	JB          r512_one_col
	// The same reduction tree as a row of four, so that a row's score
	// does not depend on how rows were grouped.
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS        Y4, Y0, Y0
	VXORPS        Y1, Y1, Y1
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDSS        X1, X0, X0
	VMULSS        X15, X0, X0
	VMOVSS      X0, (DI)
	ADDQ        R9, SI
	ADDQ        $4, DI
	DECQ        BX
	JMP         r512_one

r512_done:
	VZEROUPPER
	RET

// func axpyRowsAVX512(w, v []float32, d int, out []float32)
// out[:d] += Σ_i w[i]·v[i·d:(i+1)·d] for i < len(w); d a positive multiple
// of 16. The output is kept in registers, 128 columns at a time.
TEXT ·axpyRowsAVX512(SB), NOSPLIT, $0-80
	MOVQ w_base+0(FP), R8
	MOVQ w_len+8(FP), BX
	MOVQ v_base+24(FP), SI
	MOVQ d+48(FP), DX
	MOVQ out_base+56(FP), DI
	MOVQ DX, R9
	SHLQ $2, R9                    // row bytes
	TESTQ BX, BX
	JZ   w512_done

w512_block:
	// Columns [DI, DI+min(128, DX)) of the output: even rows accumulate in
	// Z0..Z7, odd rows in Z8..Z15, so consecutive rows do not wait on each
	// other's FMA latency.
	CMPQ   DX, $128
	JB     w512_narrow
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	VMOVUPS 256(DI), Z4
	VMOVUPS 320(DI), Z5
	VMOVUPS 384(DI), Z6
	VMOVUPS 448(DI), Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	MOVQ   SI, R11
	XORQ   CX, CX
	LEAQ   -1(BX), R12 // rows that have a successor

w512_pair_row:
	CMPQ         CX, R12
	JAE          w512_last_row
	VBROADCASTSS (R8)(CX*4), Z30
	VBROADCASTSS 4(R8)(CX*4), Z31
	VFMADD231PS  (R11), Z30, Z0
	VFMADD231PS  64(R11), Z30, Z1
	VFMADD231PS  128(R11), Z30, Z2
	VFMADD231PS  192(R11), Z30, Z3
	VFMADD231PS  256(R11), Z30, Z4
	VFMADD231PS  320(R11), Z30, Z5
	VFMADD231PS  384(R11), Z30, Z6
	VFMADD231PS  448(R11), Z30, Z7
	ADDQ         R9, R11
	VFMADD231PS  (R11), Z31, Z8
	VFMADD231PS  64(R11), Z31, Z9
	VFMADD231PS  128(R11), Z31, Z10
	VFMADD231PS  192(R11), Z31, Z11
	VFMADD231PS  256(R11), Z31, Z12
	VFMADD231PS  320(R11), Z31, Z13
	VFMADD231PS  384(R11), Z31, Z14
	VFMADD231PS  448(R11), Z31, Z15
	ADDQ         R9, R11
	ADDQ         $2, CX
	JMP          w512_pair_row

w512_last_row:
	CMPQ         CX, BX
	JAE          w512_store
	VBROADCASTSS (R8)(CX*4), Z30
	VFMADD231PS  (R11), Z30, Z0
	VFMADD231PS  64(R11), Z30, Z1
	VFMADD231PS  128(R11), Z30, Z2
	VFMADD231PS  192(R11), Z30, Z3
	VFMADD231PS  256(R11), Z30, Z4
	VFMADD231PS  320(R11), Z30, Z5
	VFMADD231PS  384(R11), Z30, Z6
	VFMADD231PS  448(R11), Z30, Z7

w512_store:
	VADDPS  Z8, Z0, Z0
	VADDPS  Z9, Z1, Z1
	VADDPS  Z10, Z2, Z2
	VADDPS  Z11, Z3, Z3
	VADDPS  Z12, Z4, Z4
	VADDPS  Z13, Z5, Z5
	VADDPS  Z14, Z6, Z6
	VADDPS  Z15, Z7, Z7
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	VMOVUPS Z4, 256(DI)
	VMOVUPS Z5, 320(DI)
	VMOVUPS Z6, 384(DI)
	VMOVUPS Z7, 448(DI)
	ADDQ    $512, DI
	ADDQ    $512, SI
	SUBQ    $128, DX
	JNZ     w512_block
	JMP     w512_done

w512_narrow:
	// Fewer than 128 columns left: 16 at a time.
	VMOVUPS (DI), Z0
	MOVQ    SI, R11
	XORQ    CX, CX

w512_narrow_row:
	VBROADCASTSS (R8)(CX*4), Z31
	VFMADD231PS  (R11), Z31, Z0
	ADDQ         R9, R11
	INCQ         CX
	CMPQ         CX, BX
	JB           w512_narrow_row
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	SUBQ    $16, DX
	JNZ     w512_block

w512_done:
	VZEROUPPER
	RET

// func dotRowsAVX2(q, k []float32, d int, out []float32, scale float32)
// As dotRowsAVX512, with d a positive multiple of 8.
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-84
	MOVQ         q_base+0(FP), R8
	MOVQ         k_base+24(FP), SI
	MOVQ         d+48(FP), DX
	MOVQ         out_base+56(FP), DI
	MOVQ         out_len+64(FP), BX
	VBROADCASTSS scale+80(FP), X15
	MOVQ         DX, R9
	SHLQ         $2, R9
	LEAQ         (R9)(R9*2), R10
	CMPQ         BX, $4
	JB           r256_one

r256_four:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX

r256_four_col:
	VMOVUPS     (R8)(AX*1), Y8
	LEAQ        (SI)(AX*1), R11
	VFMADD231PS (R11), Y8, Y0
	VFMADD231PS (R11)(R9*1), Y8, Y1
	VFMADD231PS (R11)(R9*2), Y8, Y2
	VFMADD231PS (R11)(R10*1), Y8, Y3
	ADDQ        $32, AX
	CMPQ        AX, R9
	JB          r256_four_col
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMULPS       X15, X0, X0
	VMOVUPS      X0, (DI)
	LEAQ         (SI)(R9*4), SI
	ADDQ         $16, DI
	SUBQ         $4, BX
	CMPQ         BX, $4
	JAE          r256_four

r256_one:
	TESTQ  BX, BX
	JZ     r256_done
	VXORPS Y0, Y0, Y0
	XORQ   AX, AX

r256_one_col:
	VMOVUPS     (R8)(AX*1), Y8
	VFMADD231PS (SI)(AX*1), Y8, Y0
	ADDQ        $32, AX
	CMPQ        AX, R9
	JB          r256_one_col
	VXORPS       Y1, Y1, Y1 // the reduction tree of a row of four
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDSS       X1, X0, X0
	VMULSS      X15, X0, X0
	VMOVSS      X0, (DI)
	ADDQ        R9, SI
	ADDQ        $4, DI
	DECQ        BX
	JMP         r256_one

r256_done:
	VZEROUPPER
	RET

// func axpyRowsAVX2(w, v []float32, d int, out []float32)
// As axpyRowsAVX512, with d a positive multiple of 8, 64 columns at a time.
TEXT ·axpyRowsAVX2(SB), NOSPLIT, $0-80
	MOVQ  w_base+0(FP), R8
	MOVQ  w_len+8(FP), BX
	MOVQ  v_base+24(FP), SI
	MOVQ  d+48(FP), DX
	MOVQ  out_base+56(FP), DI
	MOVQ  DX, R9
	SHLQ  $2, R9
	TESTQ BX, BX
	JZ    w256_done

w256_block:
	CMPQ    DX, $64
	JB      w256_narrow
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ    SI, R11
	XORQ    CX, CX

w256_wide_row:
	VBROADCASTSS (R8)(CX*4), Y15
	VFMADD231PS  (R11), Y15, Y0
	VFMADD231PS  32(R11), Y15, Y1
	VFMADD231PS  64(R11), Y15, Y2
	VFMADD231PS  96(R11), Y15, Y3
	VFMADD231PS  128(R11), Y15, Y4
	VFMADD231PS  160(R11), Y15, Y5
	VFMADD231PS  192(R11), Y15, Y6
	VFMADD231PS  224(R11), Y15, Y7
	ADDQ         R9, R11
	INCQ         CX
	CMPQ         CX, BX
	JB           w256_wide_row
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ    $256, DI
	ADDQ    $256, SI
	SUBQ    $64, DX
	JNZ     w256_block
	JMP     w256_done

w256_narrow:
	VMOVUPS (DI), Y0
	MOVQ    SI, R11
	XORQ    CX, CX

w256_narrow_row:
	VBROADCASTSS (R8)(CX*4), Y15
	VFMADD231PS  (R11), Y15, Y0
	ADDQ         R9, R11
	INCQ         CX
	CMPQ         CX, BX
	JB           w256_narrow_row
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	SUBQ    $8, DX
	JNZ     w256_block

w256_done:
	VZEROUPPER
	RET

// func filterGreaterAVX512(vals []float32, t float32, base int32, out []int32) int
// Writes base+i for every vals[i] > t (false for NaN) to out, in ascending
// order, and returns how many; out must have room for len(vals).
TEXT ·filterGreaterAVX512(SB), NOSPLIT, $0-64
	MOVQ         vals_base+0(FP), SI
	MOVQ         vals_len+8(FP), CX
	VBROADCASTSS t+24(FP), Z30
	MOVL         base+28(FP), AX
	VPBROADCASTD AX, Z29
	MOVQ         out_base+32(FP), DI
	MOVQ         DI, R8
	LEAQ         iota16<>(SB), AX
	VPADDD       (AX), Z29, Z29 // base + lane
	MOVL         $16, AX
	VPBROADCASTD AX, Z26

f512_16:
	CMPQ        CX, $16
	JB          f512_tail
	VCMPPS      $0x11, (SI), Z30, K1 // t < v, ordered, quiet
	KORTESTW    K1, K1
	JZ          f512_next
	VPCOMPRESSD Z29, K1, (DI)
	KMOVW       K1, AX
	POPCNTL     AX, AX
	LEAQ        (DI)(AX*4), DI

f512_next:
	VPADDD Z26, Z29, Z29
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    f512_16

f512_tail:
	TESTQ       CX, CX
	JZ          f512_done
	KMASK
	KMOVW       K1, K2
	VCMPPS      $0x11, (SI), Z30, K2, K1
	KORTESTW    K1, K1
	JZ          f512_done
	VPCOMPRESSD Z29, K1, (DI)
	KMOVW       K1, AX
	POPCNTL     AX, AX
	LEAQ        (DI)(AX*4), DI

f512_done:
	SUBQ DI, R8
	NEGQ R8
	SHRQ $2, R8
	MOVQ R8, ret+56(FP)
	VZEROUPPER
	RET

DATA iota16<>+0(SB)/4, $0
DATA iota16<>+4(SB)/4, $1
DATA iota16<>+8(SB)/4, $2
DATA iota16<>+12(SB)/4, $3
DATA iota16<>+16(SB)/4, $4
DATA iota16<>+20(SB)/4, $5
DATA iota16<>+24(SB)/4, $6
DATA iota16<>+28(SB)/4, $7
DATA iota16<>+32(SB)/4, $8
DATA iota16<>+36(SB)/4, $9
DATA iota16<>+40(SB)/4, $10
DATA iota16<>+44(SB)/4, $11
DATA iota16<>+48(SB)/4, $12
DATA iota16<>+52(SB)/4, $13
DATA iota16<>+56(SB)/4, $14
DATA iota16<>+60(SB)/4, $15
GLOBL iota16<>(SB), RODATA|NOPTR, $64

// func filterGreaterAVX2(vals []float32, t float32, base int32, out []int32) int
// As filterGreaterAVX512: eight lanes compared at once, the selected ones
// written one by one.
TEXT ·filterGreaterAVX2(SB), NOSPLIT, $0-64
	MOVQ         vals_base+0(FP), SI
	MOVQ         vals_len+8(FP), CX
	VBROADCASTSS t+24(FP), Y14
	MOVL         base+28(FP), R9
	MOVQ         out_base+32(FP), DI
	MOVQ         DI, R8

f256_8:
	CMPQ      CX, $8
	JB        f256_tail
	VCMPPS    $0x11, (SI), Y14, Y0 // t < v, ordered, quiet
	VMOVMSKPS Y0, AX
	TESTL     AX, AX
	JZ        f256_next

f256_bit:
	BSFL  AX, DX
	LEAL  (R9)(DX*1), R10
	MOVL  R10, (DI)
	ADDQ  $4, DI
	LEAL  -1(AX), DX
	ANDL  DX, AX // clear the lowest set bit
	JNZ   f256_bit

f256_next:
	ADDL $8, R9
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  f256_8

f256_tail:
	TESTQ CX, CX
	JZ    f256_done
	MOVSS (SI), X0
	UCOMISS X14, X0   // v > t, false when unordered
	JBE   f256_skip
	MOVL  R9, (DI)
	ADDQ  $4, DI

f256_skip:
	INCL R9
	ADDQ $4, SI
	DECQ CX
	JMP  f256_tail

f256_done:
	SUBQ DI, R8
	NEGQ R8
	SHRQ $2, R8
	MOVQ R8, ret+56(FP)
	VZEROUPPER
	RET

// func sumAVX2(xs []float32) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-28
	MOVQ   xs_base+0(FP), SI
	MOVQ   xs_len+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	CMPQ   CX, $64
	JB     u256_8

u256_64:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	VADDPS 128(SI), Y4, Y4
	VADDPS 160(SI), Y5, Y5
	VADDPS 192(SI), Y6, Y6
	VADDPS 224(SI), Y7, Y7
	ADDQ   $256, SI
	SUBQ   $64, CX
	CMPQ   CX, $64
	JAE    u256_64

u256_8:
	CMPQ   CX, $8
	JB     u256_tail
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    u256_8

u256_tail:
	TESTQ      CX, CX
	JZ         u256_sum
	YMASK(Y15)
	VMASKMOVPS (SI), Y15, Y8
	VADDPS     Y8, Y1, Y1

u256_sum:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM256
	VZEROUPPER
	MOVSS  X0, ret+24(FP)
	RET

// func gatherColsAVX512(k []float32, d int, sel []int32, coef []float32, out []float32)
// out[i] = Σ_j coef[j]·k[i·d+sel[j]] for i < len(out), j in order, each
// product rounded and then added (no FMA), as the scalar loop does: sixteen
// rows at a time, one gather per selected column.
TEXT ·gatherColsAVX512(SB), NOSPLIT, $0-104
	MOVQ         k_base+0(FP), SI
	MOVQ         d+24(FP), DX
	MOVQ         sel_base+32(FP), R8
	MOVQ         sel_len+40(FP), R9
	MOVQ         coef_base+56(FP), R10
	MOVQ         out_base+80(FP), DI
	MOVQ         out_len+88(FP), BX
	// Z30 = 0, d, 2d, ..., 15d: the row offsets of a block, in elements.
	LEAQ         iota16<>(SB), AX
	VMOVDQU32    (AX), Z30
	VPBROADCASTD DX, Z29
	VPMULLD      Z29, Z30, Z30
	MOVQ         DX, R12
	SHLQ         $6, R12         // 16 rows, in bytes

g512_block:
	TESTQ  BX, BX
	JZ     g512_done
	MOVL   $0xffff, AX
	CMPQ   BX, $16
	JAE    g512_full
	MOVQ   BX, CX
	MOVL   $1, AX
	SHLL   CX, AX
	DECL   AX

g512_full:
	KMOVW  AX, K2            // the rows of this block
	VPXORD Z0, Z0, Z0
	XORQ   CX, CX

g512_col:
	CMPQ         CX, R9
	JAE          g512_store
	MOVLQSX      (R8)(CX*4), R11
	LEAQ         (SI)(R11*4), R11
	KMOVW        K2, K1
	VPXORD       Z1, Z1, Z1
	VGATHERDPS   (R11)(Z30*4), K1, Z1
	VBROADCASTSS (R10)(CX*4), Z2
	VMULPS       Z2, Z1, Z1
	VADDPS       Z1, Z0, Z0
	INCQ         CX
	JMP          g512_col

g512_store:
	VMOVUPS Z0, K2, (DI)
	ADDQ    R12, SI
	ADDQ    $64, DI
	SUBQ    $16, BX
	JA      g512_block

g512_done:
	VZEROUPPER
	RET

// func gatherColsAVX2(k []float32, d int, sel []int32, coef []float32, out []float32)
// As gatherColsAVX512, eight rows at a time; len(out) must be a multiple
// of 8 (the caller does the rest).
TEXT ·gatherColsAVX2(SB), NOSPLIT, $0-104
	MOVQ         k_base+0(FP), SI
	MOVQ         d+24(FP), DX
	MOVQ         sel_base+32(FP), R8
	MOVQ         sel_len+40(FP), R9
	MOVQ         coef_base+56(FP), R10
	MOVQ         out_base+80(FP), DI
	MOVQ         out_len+88(FP), BX
	LEAQ         iota16<>(SB), AX
	VMOVDQU      (AX), Y14
	MOVQ         DX, X13
	VPBROADCASTD X13, Y13
	VPMULLD      Y13, Y14, Y14   // 0, d, ..., 7d
	VPCMPEQD     Y12, Y12, Y12   // all ones
	MOVQ         DX, R12
	SHLQ         $5, R12         // 8 rows, in bytes

g256_block:
	CMPQ   BX, $8
	JB     g256_done
	VXORPS Y0, Y0, Y0
	XORQ   CX, CX

g256_col:
	CMPQ         CX, R9
	JAE          g256_store
	MOVLQSX      (R8)(CX*4), R11
	LEAQ         (SI)(R11*4), R11
	VMOVDQA      Y12, Y3
	VXORPS       Y1, Y1, Y1
	VGATHERDPS   Y3, (R11)(Y14*4), Y1
	VBROADCASTSS (R10)(CX*4), Y2
	VMULPS       Y2, Y1, Y1
	VADDPS       Y1, Y0, Y0
	INCQ         CX
	JMP          g256_col

g256_store:
	VMOVUPS Y0, (DI)
	ADDQ    R12, SI
	ADDQ    $32, DI
	SUBQ    $8, BX
	JMP     g256_block

g256_done:
	VZEROUPPER
	RET

// func axpySelAVX512(coef, src []float32, stride int, sel []int32, out []float32)
// out[i] += Σ_j coef[j]·src[sel[j]·stride+i] for i < len(out), j in order,
// one FMA per term: bitwise one axpy per selected row. The output is held in
// registers 64 floats at a time while every selected row is added in.
TEXT ·axpySelAVX512(SB), NOSPLIT, $0-104
	MOVQ coef_base+0(FP), R8
	MOVQ src_base+24(FP), SI
	MOVQ stride+48(FP), R12
	SHLQ $2, R12                  // row stride in bytes
	MOVQ sel_base+56(FP), R9
	MOVQ sel_len+64(FP), R10
	MOVQ out_base+80(FP), DI
	MOVQ out_len+88(FP), CX
	TESTQ R10, R10
	JZ   x512_done

x512_64:
	CMPQ    CX, $64
	JB      x512_16
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	XORQ    BX, BX

x512_64_row:
	MOVLQSX      (R9)(BX*4), R11
	IMULQ        R12, R11
	ADDQ         SI, R11
	VBROADCASTSS (R8)(BX*4), Z4
	VFMADD231PS  (R11), Z4, Z0
	VFMADD231PS  64(R11), Z4, Z1
	VFMADD231PS  128(R11), Z4, Z2
	VFMADD231PS  192(R11), Z4, Z3
	INCQ         BX
	CMPQ         BX, R10
	JB           x512_64_row
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, SI
	SUBQ    $64, CX
	JMP     x512_64

x512_16:
	CMPQ    CX, $16
	JB      x512_tail
	VMOVUPS (DI), Z0
	XORQ    BX, BX

x512_16_row:
	MOVLQSX      (R9)(BX*4), R11
	IMULQ        R12, R11
	ADDQ         SI, R11
	VBROADCASTSS (R8)(BX*4), Z4
	VFMADD231PS  (R11), Z4, Z0
	INCQ         BX
	CMPQ         BX, R10
	JB           x512_16_row
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	SUBQ    $16, CX
	JMP     x512_16

x512_tail:
	TESTQ     CX, CX
	JZ        x512_done
	KMASK
	VMOVUPS.Z (DI), K1, Z0
	XORQ      BX, BX

x512_tail_row:
	MOVLQSX      (R9)(BX*4), R11
	IMULQ        R12, R11
	ADDQ         SI, R11
	VBROADCASTSS (R8)(BX*4), Z4
	VMOVUPS.Z    (R11), K1, Z5
	VFMADD231PS  Z5, Z4, Z0
	INCQ         BX
	CMPQ         BX, R10
	JB           x512_tail_row
	VMOVUPS Z0, K1, (DI)

x512_done:
	VZEROUPPER
	RET

// func axpySelAVX2(coef, src []float32, stride int, sel []int32, out []float32)
// As axpySelAVX512 for len(out) a multiple of 8 (the caller does the rest),
// 32 floats at a time.
TEXT ·axpySelAVX2(SB), NOSPLIT, $0-104
	MOVQ  coef_base+0(FP), R8
	MOVQ  src_base+24(FP), SI
	MOVQ  stride+48(FP), R12
	SHLQ  $2, R12
	MOVQ  sel_base+56(FP), R9
	MOVQ  sel_len+64(FP), R10
	MOVQ  out_base+80(FP), DI
	MOVQ  out_len+88(FP), CX
	TESTQ R10, R10
	JZ    x256_done

x256_32:
	CMPQ    CX, $32
	JB      x256_8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	XORQ    BX, BX

x256_32_row:
	MOVLQSX      (R9)(BX*4), R11
	IMULQ        R12, R11
	ADDQ         SI, R11
	VBROADCASTSS (R8)(BX*4), Y4
	VFMADD231PS  (R11), Y4, Y0
	VFMADD231PS  32(R11), Y4, Y1
	VFMADD231PS  64(R11), Y4, Y2
	VFMADD231PS  96(R11), Y4, Y3
	INCQ         BX
	CMPQ         BX, R10
	JB           x256_32_row
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     x256_32

x256_8:
	CMPQ    CX, $8
	JB      x256_done
	VMOVUPS (DI), Y0
	XORQ    BX, BX

x256_8_row:
	MOVLQSX      (R9)(BX*4), R11
	IMULQ        R12, R11
	ADDQ         SI, R11
	VBROADCASTSS (R8)(BX*4), Y4
	VFMADD231PS  (R11), Y4, Y0
	INCQ         BX
	CMPQ         BX, R10
	JB           x256_8_row
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     x256_8

x256_done:
	VZEROUPPER
	RET
