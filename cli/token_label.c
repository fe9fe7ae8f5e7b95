/* token_label.c — a token's text in the tables of `ssmlab inspect`
 * (cli/token_label.h): tokenizer bytes or raw bytes, escaped. */
#include "cli/token_label.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <unistr.h>

void cli_label_escape(char *out, const unsigned char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < CLI_LABEL_MAX;) {
        ucs4_t c;
        int u = s[i] >= 0x80 ? u8_mbtoucr(&c, s + i, n - i) : 0;   /* < 0: not UTF-8 */
        if (u > 0 && o + u < CLI_LABEL_MAX - 1) {
            memcpy(out + o, s + i, u);
            o += u;
            i += u;
        } else if (s[i] && s[i] < 0x80 && s[i] != '\\') {
            out[o++] = (char)s[i++];
        } else {
            o += snprintf(out + o, 5, "\\x%02x", s[i++]);
        }
    }
    out[o] = '\0';
}

void cli_token_label(const ssm_tokenizer *tk, const ssm_config *c, int id, int bytes, char *out)
{
    unsigned char byte = (unsigned char)id;
    size_t len;
    const char *text = tk ? ssm_tokenizer_token_bytes(tk, id, &len) : NULL;
    out[0] = '\0';
    if (text) cli_label_escape(out, (const unsigned char *)text, len);
    else if (!tk && (bytes || c->vocab_size == 256) && id >= 0 && id < 256) cli_label_escape(out, &byte, 1);
}

ssm_status cli_tokenizer_open(const char *dir, ssm_tokenizer *tk, int *have)
{
    char path[4096];
    memset(tk, 0, sizeof *tk);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    *have = access(path, F_OK) == 0;
    return *have ? ssm_tokenizer_load(tk, path) : SSM_OK;
}
