//! Drawing hostile inputs: random bytes, random ASCII, soups of a parser's own tokens, and valid
//! values taken apart (bit flips, truncations, insertions, huge length prefixes and numbers,
//! long runs of commas and quotes, bytes that are not UTF-8).

/// The longest input, whatever the mutations did.
const MAX_INPUT: usize = 64 << 10;

/// Bytes that parsers treat specially, and bytes that are not UTF-8 on their own.
const SPECIAL_BYTES: &[u8] =
    b"\x00\t\n\r \"\\,;=:/?@#%&*+-.0123456789Ww\x7f\x80\xbf\xc3\xe2\xf0\xff";

/// Sequences that are not UTF-8: a lone continuation byte, a truncated or overlong sequence, a
/// surrogate, a code point past U+10FFFF.
const NOT_UTF8: &[&[u8]] = &[
    b"\x80",
    b"\xc3",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xff\xfe",
];

/// Runs that make naive parsers slow or deep.
const RUNS: &[&[u8]] = &[
    b",", b"\"", b"\\", b"\"\\", b", ", b"=", b"W/", b"%", b"\x00",
];

/// Numbers that overflow something.
const HUGE_NUMBERS: &[&[u8]] = &[
    b"99999999999999999999",
    b"18446744073709551616",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"4294967296",
    b"2147483648",
    b"65536",
    b"00000000000000000000000000000001",
    b"1e308",
    b"-0",
];

/// Big-endian fields that make a length prefix or a count lie.
const HUGE_FIELDS: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    u64::MAX,
];

/// A small, fast, deterministic generator (SplitMix64): the same seed and stream always draw the
/// same inputs.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.rotate_left(32));
        rng.next();
        rng
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    /// A length up to `max`, mostly short: parsers meet short values most.
    fn len(&mut self, max: usize) -> usize {
        if self.one_in(16) {
            self.below(max + 1)
        } else {
            self.below(max.min(64) + 1)
        }
    }
}

/// One input: fully random, random ASCII, a soup of `dictionary` pieces, or a mutated seed.
pub(super) fn generate(
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    dictionary: &[&[u8]],
    max_len: usize,
) -> Vec<u8> {
    let mut input = match rng.below(10) {
        0 => (0..rng.len(max_len)).map(|_| rng.byte()).collect(),
        1 => (0..rng.len(max_len))
            .map(|_| {
                if rng.one_in(4) {
                    rng.pick(SPECIAL_BYTES)
                } else {
                    rng.below(0x5f) as u8 + 0x20
                }
            })
            .collect(),
        2 | 3 => soup(rng, dictionary, max_len),
        _ => {
            let mut input = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(4) {
                mutate(rng, &mut input, seeds, dictionary);
            }
            input
        }
    };
    input.truncate(MAX_INPUT);
    input
}

/// Dictionary pieces, special bytes and numbers strung together.
fn soup(rng: &mut Rng, dictionary: &[&[u8]], max_len: usize) -> Vec<u8> {
    let target = rng.len(max_len);
    let mut input = Vec::new();
    while input.len() < target {
        let piece: &[u8] = match rng.below(8) {
            0 => &[rng.pick(SPECIAL_BYTES)],
            1 => rng.pick(HUGE_NUMBERS),
            _ => rng.pick(dictionary),
        };
        input.extend_from_slice(piece);
    }
    input
}

/// One mutation of `input`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], dictionary: &[&[u8]]) {
    let at = rng.below(input.len() + 1);
    match rng.below(13) {
        // A bit flipped.
        0 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] ^= 1 << rng.below(8);
        }
        // A byte replaced by a special one.
        1 if !input.is_empty() => {
            let at = rng.below(input.len());
            input[at] = rng.pick(SPECIAL_BYTES);
        }
        // Truncated.
        2 => input.truncate(at),
        // A range removed.
        3 => {
            let end = (at + rng.len(input.len())).min(input.len());
            input.drain(at..end);
        }
        // Random bytes inserted.
        4 => {
            let bytes: Vec<u8> = (0..rng.len(16)).map(|_| rng.byte()).collect();
            input.splice(at..at, bytes);
        }
        // A dictionary piece inserted.
        5 | 6 => {
            input.splice(at..at, rng.pick(dictionary).iter().copied());
        }
        // A run of commas, quotes, backslashes…, long enough to hurt a quadratic parser.
        7 => {
            let run = rng.pick(RUNS);
            let most = if rng.one_in(4) { 20_000 } else { 200 };
            let times = 1 + rng.below(most);
            input.splice(at..at, run.iter().copied().cycle().take(run.len() * times));
        }
        // A piece of the input repeated.
        8 if !input.is_empty() => {
            let start = rng.below(input.len());
            let end = (start + 1 + rng.below(16)).min(input.len());
            let piece = input[start..end].to_vec();
            let times = 1 + rng.below(1_000);
            let repeated: Vec<u8> = piece
                .iter()
                .copied()
                .cycle()
                .take(piece.len() * times)
                .collect();
            input.splice(end..end, repeated);
        }
        // A huge number, in place of the digits found there or inserted.
        9 => {
            let digits = input[at..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            input.splice(at..at + digits, rng.pick(HUGE_NUMBERS).iter().copied());
        }
        // A big-endian field overwritten with a lying length or count.
        10 => {
            let width = rng.pick(&[1usize, 2, 4, 8]);
            let value = rng.pick(HUGE_FIELDS).to_be_bytes();
            let field = &value[8 - width..];
            let end = (at + width).min(input.len());
            input.splice(at..end, field.iter().copied());
        }
        // Bytes that are not UTF-8.
        11 => {
            input.splice(at..at, rng.pick(NOT_UTF8).iter().copied());
        }
        // Spliced with another seed.
        _ => {
            let other = &seeds[rng.below(seeds.len())];
            let from = rng.below(other.len() + 1);
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_stream_draw_the_same_inputs() {
        let seeds = vec![b"max-age=60, public".to_vec()];
        let draw = |stream| {
            let mut rng = Rng::new(7, stream);
            (0..50)
                .map(|_| generate(&mut rng, &seeds, &[b"a"], 100))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn inputs_stay_within_the_cap() {
        let seeds = vec![vec![b','; MAX_INPUT]];
        let mut rng = Rng::new(1, 1);
        for _ in 0..200 {
            assert!(generate(&mut rng, &seeds, &[b"abc"], 1000).len() <= MAX_INPUT);
        }
    }
}
