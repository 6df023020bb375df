<?php
// This file is part of local_caseload, the Caseload companion plugin for Moodle.
//
// local_caseload is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// local_caseload is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <http://www.gnu.org/licenses/>.

namespace local_caseload\privacy;

use core_privacy\local\metadata\collection;

/**
 * Privacy API: the plugin stores nothing itself; it sends roster data to Caseload.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class provider implements \core_privacy\local\metadata\provider {

    /**
     * Describe the data sent to Caseload.
     *
     * @param collection $collection
     * @return collection
     */
    public static function get_metadata(collection $collection): collection {
        $collection->add_external_location_link('caseload', [
            'userid' => 'privacy:metadata:caseload:userid',
            'fullname' => 'privacy:metadata:caseload:fullname',
            'email' => 'privacy:metadata:caseload:email',
            'idnumber' => 'privacy:metadata:caseload:idnumber',
            'courseid' => 'privacy:metadata:caseload:courseid',
            'roles' => 'privacy:metadata:caseload:roles',
        ], 'privacy:metadata:caseload');
        return $collection;
    }
}
