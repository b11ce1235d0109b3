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

	// The live terminal view, 'doorstep tally watch' (and the rules both
	// live views name).
	"watch.rule.ordinary":   "过半数通过：同意的面积和人数均超过参与表决的二分之一",
	"watch.rule.special":    "特别多数通过：同意的面积和人数均不少于参与表决的四分之三",
	"watch.rule.candidates": "选举：得票面积和人数均超过参与表决的二分之一为合格",
	"watch.rule.seats":      "选举 %d 名：得票面积和人数均超过参与表决的二分之一为合格",
	"watch.retrying":        "实时连接中断（%v），%v 后重新连接……",
	"watch.title":           "实时计票：%s",
	"watch.since":           "%s（自 %s 起）",
	"watch.state":           "状态：%s",
	"watch.checkpoint":      "计票依据：投票日志检查点 %d，根哈希 %s",
	"watch.counted":         "已计入 %d 户，共 %d 户",
	"watch.area_of":         "%s / %s 平方米（%s）",
	"watch.head_of":         "%s / %s 人（%s）",
	"watch.quorum":          "参与表决（须达 %s）",
	"watch.by_area":         "面积",
	"watch.by_head":         "人数",
	"watch.yes":             "同意（门槛 %s）",
	"watch.held":            "意见不一致、人数票待选举委员会认定的业主：%d 人",
	"watch.outcome":         "结果：%s",
	"watch.buildings":       "各楼栋参与情况",
	"watch.col.building":    "楼栋",
	"watch.col.units":       "已计入户数",
	"watch.col.area":        "已计入面积（平方米）",
	"watch.col.held":        "待认定",
	"watch.waiting":         "待选举委员会处理：有争议的房屋 %d 户，意见不一致的业主 %d 人",
	"watch.devices":         "采集设备",
	"watch.col.device":      "设备",
	"watch.col.last_sync":   "最近同步",
	"watch.col.records":     "已收到记录",
	"watch.col.unsent":      "未上传",
	"watch.never":           "从未同步",
	"watch.not_said":        "未报告",
	"watch.must_sync":       "截止前须同步",
	"watch.gaps":            "缺少 %d 条记录",
	"watch.revoked":         "已停用",
	"watch.no_devices":      "尚无登记的设备",
}
