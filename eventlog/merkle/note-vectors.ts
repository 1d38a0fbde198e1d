/**
 * Spec support: published signed-note and checkpoint vectors, data only, each with where it was
 * copied from. Not part of the barrel.
 */

/** golang.org/x/mod sumdb/note/note_test.go (TestNewVerifier, TestNewSigner, TestSign, TestOpen), golang/mod commit fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db. */
export const GO_NOTE = {
  peterVerifierKey: 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  peterSignerKey: 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz',
  enochVerifierKey: 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop',
  text: "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
  peterSignature: '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
  enochSignature: '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n',
  /** NewVerifier must refuse these: a wrong-length key with an adjusted key id, an unknown algorithm with an adjusted key id. */
  badVerifierKeys: ['PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==', 'PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
} as const;

/** The examples of the C2SP specifications, C2SP/C2SP commit 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9. */
export const C2SP = {
  /** signed-note.md "Example": this verifier key verifies this note. */
  exampleVerifierKey: 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k',
  exampleNote: 'This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n',
  /** tlog-checkpoint.md: a checkpoint (its key is not published: parse only). */
  checkpoint: 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n',
  checkpointRoot: 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
} as const;

/**
 * Go's checksum-database test log (golang.org/x/mod sumdb/client_test.go: testName, testVerifierKey,
 * testSignerKey, and the tree notes of TestClientFork's security report), golang/mod commit
 * fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db. Tree notes are checkpoints of origin "go.sum database
 * tree". The report shows a fork: the old note says size 5 has root nWzN…, the new tree's own root
 * at size 5 is T7i+…, followed by the consistency proof from 5 to 6 for it. (The report, a
 * comment, prints the old note's origin as "go.sum database tree!"; its signature verifies over the
 * text without the "!", as the new note's does.)
 */
export const GO_SUMDB = {
  origin: 'go.sum database tree',
  verifierKey: 'localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6',
  signerKey: 'PRIVATE+KEY+localhost.localdev/sumdb+00000c67+AXu6+oaVaOYuQOFrf1V59JK1owcFlJcHwwXHDfDGxSPk',
  oldTree: 'go.sum database tree\n5\nnWzN20+pwMt62p7jbv1/NlN95ePTlHijabv5zO/s36w=\n\n\u2014 localhost.localdev/sumdb AAAMZ5/2FVAdMH58kmnz/0h299pwyskEbzDzoa2/YaPdhvLya4YWDFQQxu2TQb5GpwAH4NdWnTwuhILafisyf3CNbgg=\n',
  newTree: 'go.sum database tree\n6\nwc4SkQt52o5W2nQ8To2ARs+mWuUJjss+sdleoiqxMmM=\n\n\u2014 localhost.localdev/sumdb AAAMZ6oRNswlEZ6ZZhxrCvgl1MBy+nusq4JU+TG6Fe2NihWLqOzb+y2c2kzRLoCr4tvw9o36ucQEnhc20e4nA4Qc/wc=\n',
  honestRootAt5: 'T7i+H/8ER4nXOiw4Bj0koZOkGjkxoNvlI34GpvhHhQg=',
  proof5to6: ['Nsuejv72de9hYNM5bqFv8rv3gm3zJQwv/DT/WNbLDLA=', 'mOmqqZ1aI/lzS94oq/JSbj7pD8Rv9S+xDyi12BtVSHo=', '/7Aw5jVSMM9sFjQhaMg+iiDYPMk6decH7QLOGrL9Lx0='],
} as const;

/**
 * golang.org/x/mod sumdb/tlog/note_test.go (TestFormatTree, TestParseTree), golang/mod commit
 * fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db: the tree note of size 123456789012 whose root is
 * RecordHash("hello world") = SHA-256(0x00 ‖ "hello world"), and the trees ParseTree refuses.
 */
export const GO_TLOG_TREE = {
  text: 'go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n',
  size: 123456789012,
  rootLeaf: 'hello world',
  bad: ['not-go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n', 'go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n', 'go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n'],
} as const;
