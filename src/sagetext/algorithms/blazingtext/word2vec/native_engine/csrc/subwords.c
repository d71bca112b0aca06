/* fastText's character n-grams of a word, hashed into buckets: what Dictionary::computeSubwords
 * does (and gensim's ft_ngram_hashes reproduces), for a whole vocabulary at C speed. The word is
 * wrapped in '<' and '>'; n counts UTF-8 characters, minn..maxn of them; the one-character
 * n-grams '<' and '>' are left out; the hash is FNV-1a over the bytes, each byte sign-extended
 * as fastText's int8_t cast does. */
#include "native.h"

#include <stdlib.h>
#include <string.h>

static uint32_t fasttext_hash(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)(int32_t)(int8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

int64_t word_ngrams(const char *word, size_t length, int minn, int maxn, int64_t buckets, int64_t first_row,
                    int64_t *rows, unsigned char *wrapped)
{
    const size_t size = length + 2;
    wrapped[0] = '<';
    memcpy(wrapped + 1, word, length);
    wrapped[size - 1] = '>';
    int64_t count = 0;
    for (size_t i = 0; i < size; i++) {
        if ((wrapped[i] & 0xC0) == 0x80) continue; /* not the start of a character */
        size_t j = i;
        for (int n = 1; j < size && n <= maxn; n++) {
            j++;
            while (j < size && (wrapped[j] & 0xC0) == 0x80) j++;
            if (n >= minn && !(n == 1 && (i == 0 || j == size))) {
                if (rows != NULL) rows[count] = first_row + (int64_t)(fasttext_hash(wrapped + i, j - i) % (uint64_t)buckets);
                count++;
            }
        }
    }
    return count;
}
