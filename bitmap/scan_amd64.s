//go:build amd64 && !purego && gc

#include "textflag.h"

// func findAVX2(p *uint64, n int, pattern uint64) int
//
// Returns the index of the first of the n words at p that differs from
// pattern, or n. The main loop XORs 16 words (four 256-bit loads) with the
// broadcast pattern, ORs them together and tests the result with VPTEST; a
// hit, and the last n%16 words, go to the scalar loop, which stops at the
// first differing word.
TEXT ·findAVX2(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ pattern+16(FP), AX
	XORQ DX, DX
	MOVQ AX, X0
	VPBROADCASTQ X0, Y0

loop16:
	MOVQ CX, BX
	SUBQ DX, BX
	CMPQ BX, $16
	JB   scalar
	VPXOR (SI)(DX*8), Y0, Y1
	VPXOR 32(SI)(DX*8), Y0, Y2
	VPXOR 64(SI)(DX*8), Y0, Y3
	VPXOR 96(SI)(DX*8), Y0, Y4
	VPOR  Y1, Y2, Y1
	VPOR  Y3, Y4, Y3
	VPOR  Y1, Y3, Y1
	VPTEST Y1, Y1
	JNZ  scalar
	ADDQ $16, DX
	JMP  loop16

scalar:
	CMPQ DX, CX
	JAE  done
	MOVQ (SI)(DX*8), R8
	CMPQ R8, AX
	JNE  done
	INCQ DX
	JMP  scalar

done:
	VZEROUPPER
	MOVQ DX, ret+24(FP)
	RET

// func popcntAVX512(p *uint64, n int) int
//
// Counts the set bits of n words with VPOPCNTQ over four 512-bit loads
// (32 words) per step into four accumulators, then folds them; the last
// n%32 words go through POPCNTQ.
TEXT ·popcntAVX512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	XORQ DX, DX
	XORQ AX, AX
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7

loop32:
	MOVQ CX, BX
	SUBQ DX, BX
	CMPQ BX, $32
	JB   fold
	VPOPCNTQ (SI)(DX*8), Z0
	VPOPCNTQ 64(SI)(DX*8), Z1
	VPOPCNTQ 128(SI)(DX*8), Z2
	VPOPCNTQ 192(SI)(DX*8), Z3
	VPADDQ Z0, Z4, Z4
	VPADDQ Z1, Z5, Z5
	VPADDQ Z2, Z6, Z6
	VPADDQ Z3, Z7, Z7
	ADDQ $32, DX
	JMP  loop32

fold:
	VPADDQ Z5, Z4, Z4
	VPADDQ Z7, Z6, Z6
	VPADDQ Z6, Z4, Z4
	VEXTRACTI64X4 $1, Z4, Y5
	VPADDQ Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDQ X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDQ X5, X4, X4
	VMOVQ X4, AX

tail:
	CMPQ DX, CX
	JAE  out
	POPCNTQ (SI)(DX*8), R8
	ADDQ R8, AX
	INCQ DX
	JMP  tail

out:
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET

// func popcntScalar(p *uint64, n int) int
//
// POPCNTQ over four words per step into four accumulators (the 4-way
// unrolling docs/platform.md §5 measured at about twice a plain loop).
TEXT ·popcntScalar(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	XORQ DX, DX
	XORQ AX, AX
	XORQ R9, R9
	XORQ R10, R10
	XORQ R11, R11

loop4:
	MOVQ CX, BX
	SUBQ DX, BX
	CMPQ BX, $4
	JB   tail1
	POPCNTQ (SI)(DX*8), R12
	POPCNTQ 8(SI)(DX*8), R13
	POPCNTQ 16(SI)(DX*8), DI
	POPCNTQ 24(SI)(DX*8), R8
	ADDQ R12, AX
	ADDQ R13, R9
	ADDQ DI, R10
	ADDQ R8, R11
	ADDQ $4, DX
	JMP  loop4

tail1:
	CMPQ DX, CX
	JAE  sum
	POPCNTQ (SI)(DX*8), R8
	ADDQ R8, AX
	INCQ DX
	JMP  tail1

sum:
	ADDQ R9, AX
	ADDQ R10, R11
	ADDQ R11, AX
	MOVQ AX, ret+16(FP)
	RET
