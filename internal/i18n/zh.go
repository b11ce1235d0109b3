package i18n

// zh is the Chinese catalogue. Keys are grouped by where the words show;
// keep en.go in the same order.
var zh = map[string]string{
	// Election states.
	"state.defined":   "未开始",
	"state.open":      "投票进行中",
	"state.closed":    "已截止",
	"state.certified": "已确认（最终结果）",

	// Outcomes.
	"outcome.passed":      "通过",
	"outcome.failed":      "未通过",
	"outcome.no_quorum":   "未达法定人数",
	"outcome.elected":     "当选",
	"outcome.not_elected": "未当选",
	"outcome.tied":        "票数相同",
	"outcome.pending":     "待定",

	// Quorum and thresholds (民法典第二百七十八条).
	"quorum.title":     "参与表决情况",
	"quorum.area":      "专有部分面积",
	"quorum.headcount": "业主人数",
	"quorum.mark":      "三分之二",
}
