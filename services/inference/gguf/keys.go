package gguf

// Metadata keys this package reads or writes. Architecture-specific keys are
// formed as arch + "." + suffix, e.g. "llama.context_length".
const (
	KeyArchitecture = "general.architecture"
	KeyName         = "general.name"
	KeyAlignment    = "general.alignment"
	KeyFileType     = "general.file_type"

	KeyTokenizerModel = "tokenizer.ggml.model"
	KeyTokenizerPre   = "tokenizer.ggml.pre"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyScores         = "tokenizer.ggml.scores"
	KeyTokenType      = "tokenizer.ggml.token_type"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyBOS            = "tokenizer.ggml.bos_token_id"
	KeyEOS            = "tokenizer.ggml.eos_token_id"
	KeyEOT            = "tokenizer.ggml.eot_token_id"
	KeyPad            = "tokenizer.ggml.padding_token_id"
	KeyAddBOS         = "tokenizer.ggml.add_bos_token"
	KeyAddEOS         = "tokenizer.ggml.add_eos_token"
	KeyChatTemplate   = "tokenizer.chat_template"

	SuffixContextLength = "context_length"
	SuffixEmbeddingLen  = "embedding_length"
	SuffixBlockCount    = "block_count"
	SuffixFeedForward   = "feed_forward_length"
	SuffixHeadCount     = "attention.head_count"
	SuffixHeadCountKV   = "attention.head_count_kv"
	SuffixRMSEpsilon    = "attention.layer_norm_rms_epsilon"
	SuffixKeyLength     = "attention.key_length"
	SuffixValueLength   = "attention.value_length"
	SuffixRopeFreqBase  = "rope.freq_base"
	SuffixRopeDimCount  = "rope.dimension_count"
	SuffixVocabSize     = "vocab_size"
	SuffixExpertCount   = "expert_count"
)

// specialTokenKeys are the tokenizer keys llama.cpp reads as token ids.
var specialTokenKeys = []string{
	"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
	"tokenizer.ggml.eom_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
	"tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id", "tokenizer.ggml.mask_token_id",
	"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id",
	"tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
	"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id",
}

// Token types (tokenizer.ggml.token_type values).
const (
	TokenUndefined   int32 = 0
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)
