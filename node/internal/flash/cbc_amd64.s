//go:build amd64 && !purego

#include "textflag.h"

// AES-128-CBC with AES-NI. Round keys are loaded with MOVOU (the key array
// need not be 16-byte aligned) and all memory operands go through MOVOU, so
// neither the keys nor the data need any alignment.

// Register use in cbcDecryptAESNI:
//	AX	decryption round keys (FIPS-197 equivalent inverse cipher)
//	SI, DI	source and destination, advanced block by block
//	CX	blocks left
//	X0-X7	blocks in flight
//	X8	current round key, then the previous ciphertext block to XOR
//	X14	the last ciphertext block of the group, the next group's IV
//	X15	the IV for the first block of the group

#define ROUND8(op, off) \
	MOVOU off(AX), X8; \
	op X8, X0; op X8, X1; op X8, X2; op X8, X3; \
	op X8, X4; op X8, X5; op X8, X6; op X8, X7

#define ROUND4(op, off) \
	MOVOU off(AX), X8; \
	op X8, X0; op X8, X1; op X8, X2; op X8, X3

#define ROUND2(op, off) \
	MOVOU off(AX), X8; \
	op X8, X0; op X8, X1

#define ROUND1(op, off) \
	MOVOU off(AX), X8; \
	op X8, X0

#define DECRYPT(R) \
	R(PXOR, 0); \
	R(AESDEC, 16); R(AESDEC, 32); R(AESDEC, 48); R(AESDEC, 64); R(AESDEC, 80); \
	R(AESDEC, 96); R(AESDEC, 112); R(AESDEC, 128); R(AESDEC, 144); \
	R(AESDECLAST, 160)

// UNCHAIN XORs block Xn with the ciphertext block before it, read from the
// source (still intact: stores go from the last block of a group back to
// the first, so an in-place store never clobbers a block not yet read), and
// stores it.
#define UNCHAIN(Xn, prev, off) \
	MOVOU prev(SI), X8; \
	PXOR X8, Xn; \
	MOVOU Xn, off(DI)

// func cbcDecryptAESNI(rk *aes128RoundKeys, iv *[16]byte, dst, src []byte)
TEXT ·cbcDecryptAESNI(SB), NOSPLIT, $0-64
	MOVQ rk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst_base+16(FP), DI
	MOVQ src_base+40(FP), SI
	MOVQ src_len+48(FP), CX
	SHRQ $4, CX
	MOVOU (BX), X15

dec8:
	CMPQ CX, $8
	JB   dec4
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7
	MOVOU X7, X14
	DECRYPT(ROUND8)
	UNCHAIN(X7, 96, 112)
	UNCHAIN(X6, 80, 96)
	UNCHAIN(X5, 64, 80)
	UNCHAIN(X4, 48, 64)
	UNCHAIN(X3, 32, 48)
	UNCHAIN(X2, 16, 32)
	UNCHAIN(X1, 0, 16)
	PXOR  X15, X0
	MOVOU X0, 0(DI)
	MOVOU X14, X15
	ADDQ  $128, SI
	ADDQ  $128, DI
	SUBQ  $8, CX
	JMP   dec8

dec4:
	CMPQ CX, $4
	JB   dec2
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU X3, X14
	DECRYPT(ROUND4)
	UNCHAIN(X3, 32, 48)
	UNCHAIN(X2, 16, 32)
	UNCHAIN(X1, 0, 16)
	PXOR  X15, X0
	MOVOU X0, 0(DI)
	MOVOU X14, X15
	ADDQ  $64, SI
	ADDQ  $64, DI
	SUBQ  $4, CX

dec2:
	CMPQ CX, $2
	JB   dec1
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU X1, X14
	DECRYPT(ROUND2)
	UNCHAIN(X1, 0, 16)
	PXOR  X15, X0
	MOVOU X0, 0(DI)
	MOVOU X14, X15
	ADDQ  $32, SI
	ADDQ  $32, DI
	SUBQ  $2, CX

dec1:
	TESTQ CX, CX
	JZ    decdone
	MOVOU 0(SI), X0
	DECRYPT(ROUND1)
	PXOR  X15, X0
	MOVOU X0, 0(DI)

decdone:
	RET

// func cbcEncryptAESNI(rk *aes128RoundKeys, iv *[16]byte, dst, src []byte)
//
// Encryption is a chain, one block after another, so the gain is in making
// one call per packet with all eleven round keys (X1-X11) in registers and
// nothing but AES rounds on the chain's critical path: the next block's
// plaintext and first round key are folded into the last round key of the
// block before (AESENCLAST with k10^k0^P[i+1] answers C[i]^k0^P[i+1], the
// next block's state after its first round key), and C[i] is recovered off
// the chain by XORing k0^P[i+1] back out.
//
// Register use: X0 the chain; X12 k0^P[i+1]; X13 k10^k0^P[i+1]; X14 C[i].
TEXT ·cbcEncryptAESNI(SB), NOSPLIT, $0-64
	MOVQ rk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst_base+16(FP), DI
	MOVQ src_base+40(FP), SI
	MOVQ src_len+48(FP), CX
	SHRQ $4, CX
	TESTQ CX, CX
	JZ    encdone
	MOVOU 0(AX), X1
	MOVOU 16(AX), X2
	MOVOU 32(AX), X3
	MOVOU 48(AX), X4
	MOVOU 64(AX), X5
	MOVOU 80(AX), X6
	MOVOU 96(AX), X7
	MOVOU 112(AX), X8
	MOVOU 128(AX), X9
	MOVOU 144(AX), X10
	MOVOU 160(AX), X11
	MOVOU (BX), X0
	MOVOU 0(SI), X12
	PXOR  X1, X12
	PXOR  X12, X0
	DECQ  CX

encloop:
	AESENC X2, X0
	AESENC X3, X0
	AESENC X4, X0
	AESENC X5, X0
	AESENC X6, X0
	AESENC X7, X0
	AESENC X8, X0
	AESENC X9, X0
	AESENC X10, X0
	TESTQ  CX, CX
	JZ     enclast
	MOVOU  16(SI), X12
	PXOR   X1, X12
	MOVOU  X11, X13
	PXOR   X12, X13
	AESENCLAST X13, X0
	MOVOU  X0, X14
	PXOR   X12, X14
	MOVOU  X14, 0(DI)
	ADDQ   $16, SI
	ADDQ   $16, DI
	DECQ   CX
	JMP    encloop

enclast:
	AESENCLAST X11, X0
	MOVOU X0, 0(DI)

encdone:
	RET

// func cbcEncrypt4AESNI(rk *aes128RoundKeys, iv *[4][16]byte, p0, p1, p2, p3 *byte, blocks int)
//
// Four CBC chains interleaved round by round, so four AESENCs are in flight
// where the single-chain routine has one. Each step loads all four
// plaintext blocks before storing any ciphertext, which makes a lane that
// duplicates another (same buffer, same chain) harmless.
//
// Register use: X0-X3 the chains; X4-X14 round keys 0-10; X15 P^k0;
// R8-R11 the lanes' buffers; DX the offset into them; CX blocks left.

#define LOADXOR(p, Xs) \
	MOVOU (p)(DX*1), X15; \
	PXOR  X4, X15; \
	PXOR  X15, Xs

#define ENC4(op, Xk) \
	op Xk, X0; op Xk, X1; op Xk, X2; op Xk, X3

TEXT ·cbcEncrypt4AESNI(SB), NOSPLIT, $0-56
	MOVQ rk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ p0+16(FP), R8
	MOVQ p1+24(FP), R9
	MOVQ p2+32(FP), R10
	MOVQ p3+40(FP), R11
	MOVQ blocks+48(FP), CX
	TESTQ CX, CX
	JZ    enc4done
	MOVOU 0(AX), X4
	MOVOU 16(AX), X5
	MOVOU 32(AX), X6
	MOVOU 48(AX), X7
	MOVOU 64(AX), X8
	MOVOU 80(AX), X9
	MOVOU 96(AX), X10
	MOVOU 112(AX), X11
	MOVOU 128(AX), X12
	MOVOU 144(AX), X13
	MOVOU 160(AX), X14
	MOVOU 0(BX), X0
	MOVOU 16(BX), X1
	MOVOU 32(BX), X2
	MOVOU 48(BX), X3
	XORQ  DX, DX

enc4loop:
	LOADXOR(R8, X0)
	LOADXOR(R9, X1)
	LOADXOR(R10, X2)
	LOADXOR(R11, X3)
	ENC4(AESENC, X5)
	ENC4(AESENC, X6)
	ENC4(AESENC, X7)
	ENC4(AESENC, X8)
	ENC4(AESENC, X9)
	ENC4(AESENC, X10)
	ENC4(AESENC, X11)
	ENC4(AESENC, X12)
	ENC4(AESENC, X13)
	ENC4(AESENCLAST, X14)
	MOVOU X0, (R8)(DX*1)
	MOVOU X1, (R9)(DX*1)
	MOVOU X2, (R10)(DX*1)
	MOVOU X3, (R11)(DX*1)
	ADDQ  $16, DX
	DECQ  CX
	JNZ   enc4loop
	MOVOU X0, 0(BX)
	MOVOU X1, 16(BX)
	MOVOU X2, 32(BX)
	MOVOU X3, 48(BX)

enc4done:
	RET

// func cbcEncrypt8AESNI(rk *aes128RoundKeys, iv *[8][16]byte, p *[8]*byte, blocks int)
//
// Eight chains interleaved, for CPUs with more than one AES unit or a
// latency above four cycles, where four chains do not fill the pipeline.
// Registers do not hold all eleven round keys beside eight chains: k0-k5
// stay in registers and k6-k10 are loaded each step (loads are off the
// chains' critical path).
//
// Register use: X0-X7 the chains; X8 a loaded round key; X9-X13 round keys
// 1-5; X14 P^k0; X15 round key 0; SI the array of lane pointers; R8 one
// lane's pointer; DX the offset into the buffers; CX blocks left.

#define LOAD8(off, Xs) \
	MOVQ  off(SI), R8; \
	MOVOU (R8)(DX*1), X14; \
	PXOR  X15, X14; \
	PXOR  X14, Xs

#define STORE8(off, Xs) \
	MOVQ  off(SI), R8; \
	MOVOU Xs, (R8)(DX*1)

#define ENC8(op, Xk) \
	op Xk, X0; op Xk, X1; op Xk, X2; op Xk, X3; \
	op Xk, X4; op Xk, X5; op Xk, X6; op Xk, X7

#define ENC8M(op, off) \
	MOVOU off(AX), X8; \
	ENC8(op, X8)

TEXT ·cbcEncrypt8AESNI(SB), NOSPLIT, $0-32
	MOVQ rk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ p+16(FP), SI
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JZ    enc8done
	MOVOU 0(AX), X15
	MOVOU 16(AX), X9
	MOVOU 32(AX), X10
	MOVOU 48(AX), X11
	MOVOU 64(AX), X12
	MOVOU 80(AX), X13
	MOVOU 0(BX), X0
	MOVOU 16(BX), X1
	MOVOU 32(BX), X2
	MOVOU 48(BX), X3
	MOVOU 64(BX), X4
	MOVOU 80(BX), X5
	MOVOU 96(BX), X6
	MOVOU 112(BX), X7
	XORQ  DX, DX

enc8loop:
	LOAD8(0, X0)
	LOAD8(8, X1)
	LOAD8(16, X2)
	LOAD8(24, X3)
	LOAD8(32, X4)
	LOAD8(40, X5)
	LOAD8(48, X6)
	LOAD8(56, X7)
	ENC8(AESENC, X9)
	ENC8(AESENC, X10)
	ENC8(AESENC, X11)
	ENC8(AESENC, X12)
	ENC8(AESENC, X13)
	ENC8M(AESENC, 96)
	ENC8M(AESENC, 112)
	ENC8M(AESENC, 128)
	ENC8M(AESENC, 144)
	ENC8M(AESENCLAST, 160)
	STORE8(0, X0)
	STORE8(8, X1)
	STORE8(16, X2)
	STORE8(24, X3)
	STORE8(32, X4)
	STORE8(40, X5)
	STORE8(48, X6)
	STORE8(56, X7)
	ADDQ  $16, DX
	DECQ  CX
	JNZ   enc8loop
	MOVOU X0, 0(BX)
	MOVOU X1, 16(BX)
	MOVOU X2, 32(BX)
	MOVOU X3, 48(BX)
	MOVOU X4, 64(BX)
	MOVOU X5, 80(BX)
	MOVOU X6, 96(BX)
	MOVOU X7, 112(BX)

enc8done:
	RET
